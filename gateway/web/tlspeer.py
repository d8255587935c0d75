"""The client certificate of an HTTPS connection, for the request handlers.

uvicorn verifies a client certificate during the handshake (against ``web.stow.client_ca_file``)
but does not put it in the ASGI scope. :class:`CertificateH11Protocol` is uvicorn's h11
protocol that, once the connection is up, adds the verified certificate (DER) to the state
every request of that connection carries (``scope["state"]``, Starlette's ``request.state``);
:func:`peer_certificate` reads it back. A request on a connection without one finds None.
"""

from __future__ import annotations

import ssl
from types import SimpleNamespace

from fastapi import Request
from uvicorn.protocols.http.h11_impl import H11Protocol

from gateway import tls
from gateway.ingest.callers import PeerCertificate

STATE_KEY = "deid_peer_certificate"


class CertificateH11Protocol(H11Protocol):
    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        try:
            der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        except (ValueError, ssl.SSLError):
            der = None
        if der:  # this connection's copy only: the server's state stays as it is
            self.app_state = {**self.app_state, STATE_KEY: der}


def peer_certificate(request: Request) -> PeerCertificate | None:
    der = request.scope.get("state", {}).get(STATE_KEY)
    return PeerCertificate(der) if der else None


def server_context(web) -> ssl.SSLContext:
    """The console's TLS context when it takes client certificates: BCP 195's policy
    (:func:`gateway.tls.server_context`), the console's certificate, and senders' certificates
    asked for (optional: a browser without one still reaches the login page) and verified
    against ``web.stow.client_ca_file`` alone. (Its deferred handshake concerns blocking
    sockets only; asyncio shakes hands in the event loop, before the protocol sees anything.)"""
    settings = SimpleNamespace(cert_file=web.tls_cert_file, key_file=web.tls_key_file,
                               ca_file=web.stow.client_ca_file, client_certificates="optional",
                               min_version="1.2")
    return tls.server_context(settings, "web")
