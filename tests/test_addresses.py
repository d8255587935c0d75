"""An IPv4 peer of a dual-stack listener is compared as the IPv4 address it is."""

from __future__ import annotations

from gateway.addresses import in_network, peer_address


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
