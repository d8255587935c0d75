"""The TLS handshake of an incoming connection, in that connection's own thread.

The receiver's server context defers the handshake (:class:`gateway.tls.DeferredHandshakeContext`),
so it happens here, from the EVT_CONN_OPEN handler, before pynetdicom reads the first PDU:
with ``ingest.network_timeout`` as its limit, and with its failure reported rather than lost.
A connection that closes before sending a byte (a port check, a load balancer's probe) did not
try a handshake and is closed quietly; everything else that fails (a plain DICOM client, a
certificate from another CA, no certificate where one is required, an old protocol version) is
a handshake failure.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass

from gateway.tls import describe


@dataclass(frozen=True)
class Handshake:
    ok: bool
    reason: str | None = None  # why it failed; None for a connection closed before any byte


PLAIN = Handshake(ok=True)


def shake_hands(sock: socket.socket | None, timeout: float) -> Handshake:
    """Complete the handshake of ``sock`` (nothing to do on a plain socket)."""
    if not isinstance(sock, ssl.SSLSocket):
        return PLAIN
    previous = sock.gettimeout()
    sock.settimeout(timeout)
    try:
        # The raw socket's own recv: peeks at the first byte without touching TLS.
        if not socket.socket.recv(sock, 1, socket.MSG_PEEK):
            return Handshake(ok=False)
        sock.do_handshake()
    except TimeoutError:
        return Handshake(ok=False, reason="handshake failed: timed out")
    except (OSError, ValueError) as exc:  # SSLError, a reset, or the peer closing mid-handshake
        return Handshake(ok=False, reason=describe(exc))
    finally:
        try:
            sock.settimeout(previous)
        except OSError:
            pass
    return Handshake(ok=True)
