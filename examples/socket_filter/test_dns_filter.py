"""dns_filter.c (a socket filter), tested with bpfkit's pytest plugin."""

import pytest

from bpfkit.testing.packets import ether, ipv4, ipv6, tcp, udp

HERE = __file__.rsplit("/", 1)[0]

pytestmark = pytest.mark.requires("clang")


@pytest.fixture
def dns(bpf):
    return bpf(f"{HERE}/dns_filter.c")


def test_a_dns_query_is_kept_whole(dns):
    pkt = bytes(ether() / ipv4() / udp(dport=53) / b"\x12\x34query")
    r = dns.run(packet=pkt)
    assert r.retval == len(pkt) - 14  # skb->len counts from the IP header


@pytest.mark.parametrize(
    "pkt",
    [
        ether() / ipv4() / udp(dport=54),
        ether() / ipv4() / tcp(dport=53),
        ether() / ipv6() / udp(dport=53),
    ],
    ids=["udp-54", "tcp-53", "ipv6"],
)
def test_everything_else_is_dropped(dns, pkt):
    assert dns.run(packet=pkt).retval == 0


def test_ip_options_move_the_udp_header(dns):
    # An IPv4 header of 24 bytes (IHL 6): the filter must read the port 4 bytes later.
    raw = bytearray(bytes(ether() / ipv4() / udp(dport=53)))
    ip = raw[14:34]
    ip[0] = 0x46
    ip[2:4] = (len(raw) - 14 + 4).to_bytes(2, "big")
    ip[10:12] = b"\0\0"
    s = (
        sum(int.from_bytes(ip[i : i + 2], "big") for i in range(0, 20, 2)) + 0x0000
    )  # options: 4 zero bytes
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    ip[10:12] = (~s & 0xFFFF).to_bytes(2, "big")
    pkt = bytes(raw[:14] + ip + b"\0\0\0\0" + raw[34:])
    assert dns.run(packet=pkt).retval == len(pkt) - 14
