"""xdp_count, tested with bpfkit's pytest plugin: `pytest examples/` (VM without root, VM and
kernel compared as root)."""

import pytest

from bpfkit.testing.packets import ether, ipv4, ipv6, tcp, udp

HERE = __file__.rsplit("/", 1)[0]
XDP_PASS = 2

pytestmark = pytest.mark.requires("clang")


@pytest.fixture
def xdp(bpf):
    return bpf(f"{HERE}/xdp_count.c")


def test_udp_over_ipv4_is_counted_and_passed(xdp):
    r = xdp.run(packet=ether() / ipv4() / udp(dport=53) / b"query")
    assert r.retval == XDP_PASS
    assert r.maps["counts"][17] == 1
    assert sum(r.maps["counts"].values()) == 1


def test_tcp_over_ipv6(xdp):
    r = xdp.run(packet=ether() / ipv6() / tcp(flags="S"))
    assert r.maps["counts"][6] == 1


def test_counts_add_to_what_the_map_held(xdp, bpf_maps):
    bpf_maps["counts"] = {17: 41}  # written into the map before the run
    r = xdp.run(packet=ether() / ipv4() / udp())
    assert r.maps["counts"][17] == 42


def test_a_frame_neither_ipv4_nor_ipv6_counts_in_slot_0_and_is_unchanged(xdp):
    arp = bytes(ether(type=0x0806) / bytes(28))
    r = xdp.run(packet=arp)
    assert r.maps["counts"][0] == 1
    assert r.packet == arp


@pytest.mark.requires("scapy")
def test_scapy_packets_work_too(xdp):
    import scapy.layers.inet as scapy

    pkt = scapy.Ether() / scapy.IP(dst="10.0.0.2") / scapy.ICMP()
    assert xdp.run(packet=pkt).maps["counts"][1] == 1  # ICMP is protocol 1
