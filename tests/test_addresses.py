"""An IPv4 peer of a dual-stack listener is compared as the IPv4 address it is."""

from __future__ import annotations

from gateway.addresses import in_network, is_loopback, peer_address


def test_an_ipv4_mapped_address_is_in_the_ipv4_networks_that_hold_it():
    assert str(peer_address("::ffff:10.20.0.12")) == "10.20.0.12"
    assert in_network("::ffff:10.20.0.12", "10.20.0.12")
    assert in_network("::ffff:10.20.0.12", "10.20.0.0/24")
    assert not in_network("::ffff:10.20.1.12", "10.20.0.0/24")


def test_other_addresses_compare_as_they_are():
    assert in_network("10.20.0.12", "10.20.0.0/24")
    assert in_network("2001:db8::7", "2001:db8::/32")
    assert not in_network("2001:db8::7", "10.20.0.0/24")


def test_what_is_not_an_address_is_in_no_network():
    assert peer_address(None) is None and peer_address("") is None and peer_address("pacs.local") is None
    assert not in_network("pacs.local", "10.0.0.0/8")
    assert not in_network("10.0.0.1", "not a network")


def test_a_listening_host_is_loopback_only_when_it_is_this_machine_alone():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("10.20.0.5")
    assert not is_loopback("gateway.hospital.example")  # a name may resolve to anything
