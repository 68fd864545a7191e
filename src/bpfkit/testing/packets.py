"""Packets for tests: Ethernet, IPv4, IPv6, TCP and UDP built from keyword arguments.

>>> pkt = ether() / ipv4(src="10.0.0.1", dst="10.0.0.2") / udp(sport=1234, dport=53) / b"hi"
>>> len(bytes(pkt))
44

Layers stack with ``/`` (as in scapy); lengths, protocol numbers and checksums are filled in
when the packet is turned into bytes.  :func:`packet_bytes` also takes ``bytes`` and scapy
packets (anything with ``__bytes__``), so a test can use scapy where it is installed.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from typing import Any

from bpfkit.errors import BpfkitError

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
IPPROTO_TCP = 6
IPPROTO_UDP = 17

_TCP_FLAGS = {
    "F": 0x01,
    "S": 0x02,
    "R": 0x04,
    "P": 0x08,
    "A": 0x10,
    "U": 0x20,
    "E": 0x40,
    "C": 0x80,
}


def _check(name: str, value: int, bits: int) -> int:
    if not isinstance(value, int) or not 0 <= value < 1 << bits:
        raise BpfkitError(f"packet field {name}={value!r} does not fit in {bits} bits")
    return value


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _mac(text: str) -> bytes:
    parts = text.split(":")
    try:
        raw = bytes(int(p, 16) for p in parts)
    except ValueError:
        raw = b""
    if len(raw) != 6 or len(parts) != 6:
        raise BpfkitError(f"{text!r} is not a MAC address (like 02:00:00:00:00:01)")
    return raw


@dataclass
class Layer:
    """One header; ``/`` puts the next layer (or payload bytes) after it."""

    fields: dict[str, Any]
    payload: Layer | bytes = b""
    kind: str = field(default="", init=False)

    def __truediv__(self, other: Layer | bytes) -> Layer:
        last = self
        while isinstance(last.payload, Layer):
            last = last.payload
        if last.payload:
            raise BpfkitError("this packet already ends with payload bytes")
        last.payload = other if isinstance(other, Layer) else bytes(other)
        return self

    def __bytes__(self) -> bytes:
        return self.build(None)

    def _rest(self) -> bytes:
        return self.payload.build(self) if isinstance(self.payload, Layer) else self.payload

    def build(self, outer: Layer | None) -> bytes:
        raise NotImplementedError


class _Ether(Layer):
    kind = "ether"

    def build(self, outer: Layer | None) -> bytes:
        f = self.fields
        etype = f.get("type")
        if etype is None:
            inner = self.payload
            etype = ETH_P_IPV6 if isinstance(inner, _IPv6) else ETH_P_IP
        hdr = _mac(f.get("dst", "02:00:00:00:00:02")) + _mac(f.get("src", "02:00:00:00:00:01"))
        return hdr + struct.pack("!H", _check("type", etype, 16)) + self._rest()


class _IPv4(Layer):
    kind = "ipv4"

    def addrs(self) -> tuple[bytes, bytes]:
        try:
            src = ipaddress.IPv4Address(self.fields.get("src", "10.0.0.1")).packed
            dst = ipaddress.IPv4Address(self.fields.get("dst", "10.0.0.2")).packed
        except ValueError as e:
            raise BpfkitError(f"IPv4 packet: {e}") from None
        return src, dst

    def build(self, outer: Layer | None) -> bytes:
        f = self.fields
        body = self._rest()
        proto = f.get("proto", _proto_of(self.payload))
        src, dst = self.addrs()
        hdr = struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            _check("tos", f.get("tos", 0), 8),
            _check("len", 20 + len(body), 16),
            _check("id", f.get("id", 1), 16),
            _check("frag", f.get("frag", 0x4000), 16),
            _check("ttl", f.get("ttl", 64), 8),
            _check("proto", proto, 8),
            0,
            src,
            dst,
        )
        return hdr[:10] + struct.pack("!H", _csum(hdr)) + hdr[12:] + body


class _IPv6(Layer):
    kind = "ipv6"

    def addrs(self) -> tuple[bytes, bytes]:
        try:
            src = ipaddress.IPv6Address(self.fields.get("src", "fd00::1")).packed
            dst = ipaddress.IPv6Address(self.fields.get("dst", "fd00::2")).packed
        except ValueError as e:
            raise BpfkitError(f"IPv6 packet: {e}") from None
        return src, dst

    def build(self, outer: Layer | None) -> bytes:
        f = self.fields
        body = self._rest()
        nh = f.get("nh", _proto_of(self.payload))
        src, dst = self.addrs()
        first = (
            (6 << 28) | (_check("tc", f.get("tc", 0), 8) << 20) | _check("fl", f.get("fl", 0), 20)
        )
        hdr = struct.pack(
            "!IHBB16s16s",
            first,
            _check("plen", len(body), 16),
            _check("nh", nh, 8),
            _check("hlim", f.get("hlim", 64), 8),
            src,
            dst,
        )
        return hdr + body


def _proto_of(payload: Layer | bytes) -> int:
    if isinstance(payload, _TCP):
        return IPPROTO_TCP
    if isinstance(payload, _UDP):
        return IPPROTO_UDP
    return 59 if not payload else 253  # IPv6 "no next header" / experimental


def _pseudo(outer: Layer | None, proto: int, length: int) -> bytes:
    if isinstance(outer, _IPv4):
        src, dst = outer.addrs()
        return src + dst + struct.pack("!BBH", 0, proto, length)
    if isinstance(outer, _IPv6):
        src, dst = outer.addrs()
        return src + dst + struct.pack("!I3xB", length, proto)
    return b""


class _UDP(Layer):
    kind = "udp"

    def build(self, outer: Layer | None) -> bytes:
        f = self.fields
        body = self._rest()
        n = 8 + len(body)
        hdr = struct.pack(
            "!HHHH",
            _check("sport", f.get("sport", 12345), 16),
            _check("dport", f.get("dport", 53), 16),
            _check("len", n, 16),
            0,
        )
        c = _csum(_pseudo(outer, IPPROTO_UDP, n) + hdr + body) or 0xFFFF
        return hdr[:6] + struct.pack("!H", c) + body


class _TCP(Layer):
    kind = "tcp"

    def build(self, outer: Layer | None) -> bytes:
        f = self.fields
        body = self._rest()
        flags = f.get("flags", "S")
        if isinstance(flags, str):
            try:
                flags = sum(_TCP_FLAGS[c] for c in flags)
            except KeyError as e:
                raise BpfkitError(
                    f"TCP flags {f['flags']!r}: unknown flag {e.args[0]!r} (use FSRPAUEC)"
                ) from None
        hdr = struct.pack(
            "!HHIIBBHHH",
            _check("sport", f.get("sport", 12345), 16),
            _check("dport", f.get("dport", 80), 16),
            _check("seq", f.get("seq", 1), 32),
            _check("ack", f.get("ack", 0), 32),
            5 << 4,
            _check("flags", flags, 8),
            _check("window", f.get("window", 8192), 16),
            0,
            0,
        )
        c = _csum(_pseudo(outer, IPPROTO_TCP, len(hdr) + len(body)) + hdr + body)
        return hdr[:16] + struct.pack("!H", c) + hdr[18:] + body


def ether(**fields: Any) -> Layer:
    """An Ethernet header (``src``, ``dst`` MACs, ``type`` from the next layer)."""
    return _Ether(fields)


def ipv4(**fields: Any) -> Layer:
    """An IPv4 header (``src``, ``dst``, ``ttl``, ``tos``, ``id``, ``proto``)."""
    return _IPv4(fields)


def ipv6(**fields: Any) -> Layer:
    """An IPv6 header (``src``, ``dst``, ``hlim``, ``tc``, ``fl``, ``nh``)."""
    return _IPv6(fields)


def tcp(**fields: Any) -> Layer:
    """A TCP header (``sport``, ``dport``, ``seq``, ``ack``, ``flags`` like ``"SA"``)."""
    return _TCP(fields)


def udp(**fields: Any) -> Layer:
    """A UDP header (``sport``, ``dport``)."""
    return _UDP(fields)


def packet_bytes(packet: object) -> bytes:
    """The bytes of a packet: ``bytes``, a :class:`Layer` stack or a scapy packet."""
    if isinstance(packet, (bytes, bytearray, memoryview)):
        return bytes(packet)
    if hasattr(packet, "__bytes__"):
        return bytes(packet)  # type: ignore[call-overload,unused-ignore]
    raise BpfkitError(f"{type(packet).__name__} is not a packet (give bytes, layers or scapy)")
