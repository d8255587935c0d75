"""Peer addresses as the gateway compares them with the networks its settings name.

A listener on an IPv6 address that also takes IPv4 connections (``::``, dual-stack, as Linux
makes it by default) sees an IPv4 peer as ``::ffff:10.20.0.12``. Compared as it comes, that
address is in no IPv4 network: an allow-list entry ``ip: 10.20.0.12`` refused the very sender it
names, and a rule matching ``10.20.0.0/16`` never matched. Every comparison goes through
:func:`peer_address`, which gives such an address back in its IPv4 form.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network


def peer_address(text: str | None) -> IPv4Address | IPv6Address | None:
    """The address a peer connected from (an IPv4-mapped IPv6 one as IPv4); None when ``text``
    is none (batch mode, a row from before addresses were kept) or not an address."""
    try:
        address = ip_address(text or "")
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def in_network(address: str | None, network: str) -> bool:
    """Whether the peer at ``address`` is in ``network`` (an address or a CIDR network)."""
    peer = peer_address(address)
    try:
        return peer is not None and peer in ip_network(network, strict=False)
    except ValueError:
        return False


def is_loopback(host: str) -> bool:
    """Whether a listening host the settings name is this machine alone (``localhost`` too); a
    host name is taken as not, since it may resolve to anything."""
    if host == "localhost":
        return True
    address = peer_address(host)
    return address is not None and address.is_loopback
