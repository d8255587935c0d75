"""TCP options for every DICOM association the gateway opens or accepts.

pynetdicom leaves Nagle's algorithm on. A C-STORE goes out as a run of P-DATA PDUs, each one
``send`` call smaller than loopback's segment size, so with Nagle every PDU after the first waits
until the peer has acknowledged the one before it, and a peer that delays its ACKs (dcmtk's
tools and Orthanc do, up to 40 ms) stalls each instance. Measured on the forwarder to Orthanc: 65
instances/s with Nagle, the same path without it in ``bench/chain.py``. dcmtk itself turns Nagle
off when ``TCP_NODELAY`` is set in its environment; the gateway does it for its own sockets.
"""

from __future__ import annotations

import logging
import socket

from pynetdicom import evt

log = logging.getLogger("gateway.sockets")


def send_without_delay(event: evt.Event) -> None:
    """EVT_CONN_OPEN: turn Nagle's algorithm off on the association's socket (plain or TLS)."""
    sock = getattr(event.assoc.dul.socket, "socket", None)
    if sock is None:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as exc:  # closed already, or not TCP: the association goes on as it would have
        log.debug("TCP_NODELAY not set (%s)", type(exc).__name__)


#: The handler to bind to every association, as pynetdicom's ``evt_handlers`` entry.
NO_DELAY = (evt.EVT_CONN_OPEN, send_without_delay)
