"""The gateway's TLS policy, for every connection it makes (DICOM and HTTPS).

DICOM PS3.15 Annex B points at BCP 195 (RFC 9325) for its TLS profiles: TLS 1.2 at least, and on
TLS 1.2 only suites with forward secrecy and authenticated encryption (ECDHE or DHE key
exchange, AES-GCM or ChaCha20-Poly1305). TLS 1.3's suites all qualify and are left to OpenSSL.
The peer's certificate is always verified, with its host name: there is no setting that turns
either off, so a mistake in the configuration fails closed instead of sending in clear.

A client context is built afresh for each association or session, so renewed certificates and
keys are picked up without a restart; the receiver's server context is built when it starts.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path

from gateway.config import ConfigError
from gateway.keys import check_private

#: TLS 1.2 cipher suites (OpenSSL names) allowed by BCP 195 / PS3.15 B.9 and B.10.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL:!PSK:!SRP"
MIN_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def harden(context: ssl.SSLContext, min_version: str = "1.2") -> ssl.SSLContext:
    """Apply the policy to a context of either side: version floor, suites, no compression or
    renegotiation (attacks on both are why BCP 195 forbids them)."""
    context.minimum_version = MIN_VERSIONS[min_version]
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    return context


def client_context(settings, where: str) -> ssl.SSLContext:
    """A context for connecting to a peer: its certificate verified against ``settings.ca_file``
    (the system's trust store when unset), with host name checking, presenting
    ``settings.cert_file`` when set. ``where`` names the settings in error messages."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the peer and its host name
    if settings.ca_file is None:
        context.load_default_certs()
    else:  # the bundle alone: a private archive's CA, not every public one
        _load(lambda: context.load_verify_locations(cafile=str(settings.ca_file)),
              f"{where}.ca_file", settings.ca_file)
    harden(context, getattr(settings, "min_version", "1.2"))
    cert_file = getattr(settings, "cert_file", None)
    if cert_file is not None:
        key_file = settings.key_file
        check_private(key_file or cert_file, f"{where}.key_file" if key_file else f"{where}.cert_file")
        _load(lambda: context.load_cert_chain(str(cert_file), str(key_file) if key_file else None),
              f"{where}.cert_file", cert_file)
    return context


CLIENT_CERTIFICATES = {"required": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL, "none": ssl.CERT_NONE}


class DeferredHandshakeContext(ssl.SSLContext):
    """A server context whose sockets do not shake hands when wrapped.

    pynetdicom wraps each accepted connection in its accept loop, where a handshake would run
    in the one thread that accepts every connection: a peer that connects and stays silent
    would stall the listener, and a failed handshake would vanish without a trace. The
    receiver completes the handshake itself, in the connection's own thread, with a timeout,
    and audits a failure (:mod:`gateway.ingest.handshake`).
    """

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True, *args, **kwargs):
        return super().wrap_socket(sock, server_side, False, *args, **kwargs)


def server_context(settings, where: str) -> DeferredHandshakeContext:
    """A context for accepting peers: ``settings.cert_file`` (and ``key_file``) presented,
    client certificates asked for per ``settings.client_certificates`` and verified against
    ``settings.ca_file`` alone (never the system's store: any public CA's customer is not a
    sender)."""
    context = DeferredHandshakeContext(ssl.PROTOCOL_TLS_SERVER)
    harden(context, settings.min_version)
    key_file = settings.key_file
    check_private(key_file or settings.cert_file, f"{where}.key_file" if key_file else f"{where}.cert_file")
    _load(lambda: context.load_cert_chain(str(settings.cert_file), str(key_file) if key_file else None),
          f"{where}.cert_file", settings.cert_file)
    context.verify_mode = CLIENT_CERTIFICATES[settings.client_certificates]
    if settings.ca_file is not None:
        _load(lambda: context.load_verify_locations(cafile=str(settings.ca_file)),
              f"{where}.ca_file", settings.ca_file)
    return context


def _load(action: Callable[[], None], setting: str, path: Path) -> None:
    try:
        action()
    except FileNotFoundError:
        raise ConfigError(f"{setting}: {path} does not exist") from None
    except (ssl.SSLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or type(exc).__name__
        raise ConfigError(f"{setting}: cannot use {path} ({reason})") from None


def watch_handshakes(context: ssl.SSLContext) -> list[str]:
    """Make ``context`` note why each of its handshakes failed, in the list returned.

    pynetdicom swallows the exception of a failed TLS connection and reports only "association
    failed", the same as a refused TCP connection; an untrusted archive is a security event
    that deserves its own audit row, so the socket class remembers the reason. Under TLS 1.3 a
    server refuses the client's certificate only after the handshake, in an alert that arrives
    with the first read: TLS errors on reading are noted too.
    """
    failures: list[str] = []

    class WatchedSocket(ssl.SSLSocket):
        def do_handshake(self, block=False):
            try:
                return super().do_handshake(block)
            except OSError as exc:  # SSLError, or the peer closing on a ClientHello it cannot read
                failures.append(describe(exc))
                raise

        def recv(self, *args, **kwargs):
            try:
                return super().recv(*args, **kwargs)
            except ssl.SSLError as exc:
                failures.append(describe(exc))
                raise

        def recv_into(self, *args, **kwargs):
            try:
                return super().recv_into(*args, **kwargs)
            except ssl.SSLError as exc:
                failures.append(describe(exc))
                raise

    context.sslsocket_class = WatchedSocket
    return failures


def describe(exc: BaseException) -> str:
    """Why a handshake failed, in OpenSSL's words (no data of any dataset can be in them)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate not accepted: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"handshake failed: {exc.reason or type(exc).__name__}"
    return f"handshake failed: {type(exc).__name__}"


def find_ssl_error(exc: BaseException | None, depth: int = 0) -> ssl.SSLError | None:
    """The :class:`ssl.SSLError` under an HTTP library's wrapping exceptions, if any."""
    if exc is None or depth > 8:
        return None
    if isinstance(exc, ssl.SSLError):
        return exc
    for inner in (exc.__cause__, exc.__context__, *[a for a in exc.args if isinstance(a, BaseException)],
                  getattr(exc, "reason", None)):
        if isinstance(inner, BaseException) and (found := find_ssl_error(inner, depth + 1)):
            return found
    return None
