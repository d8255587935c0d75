"""Who may open an association: the called AE title, then ``ingest.allowed_callers``.

An AE title is a claim any sender can make, so an allow-list entry may also bind it to an
address (``ip``) and to a client certificate (``cert_subject``, ``cert_san``), verified by the
TLS handshake before the association is even requested. A refusal names its reason in words
that carry nothing the caller sent beyond its AE title and address; the most specific reason
wins (an AE title on the list but from the wrong address says so), which is what an operator
needs to fix a sender's registration.
"""

from __future__ import annotations

import ipaddress
import ssl

from cryptography import x509

from gateway.addresses import in_network, is_loopback
from gateway.ingest.config import CallerRule, IngestConfig

# A-ASSOCIATE-RJ (result, source, reason): rejected-permanent, service-user, and
# "calling AE title not recognised" or "called AE title not recognised" (PS3.8 9.3.4).
REJECT_CALLING_AE = (0x01, 0x01, 0x03)
REJECT_CALLED_AE = (0x01, 0x01, 0x07)
# Rejected-transient, service-provider (presentation), "local limit exceeded": as pynetdicom
# answers past its own limit; the sender may try again later.
REJECT_BUSY = (0x02, 0x03, 0x02)

CALLED_AE = "called AE title not recognised"
CALLING_AE = "calling AE title not allowed"
ADDRESS = "address not allowed for this calling AE title"
NO_CERTIFICATE = "client certificate required for this calling AE title"
WRONG_CERTIFICATE = "client certificate does not match this calling AE title"
BUSY = "ingest.max_associations reached"
# Before any request is read: the connection's address is in no entry's ``ip``, and every entry
# has one (see admits_address).
UNLISTED_ADDRESS = "address matches no allow-list entry"
# Most specific last: the reason reported is the furthest any entry got.
_ORDER = [CALLING_AE, ADDRESS, NO_CERTIFICATE, WRONG_CERTIFICATE]


class PeerCertificate:
    """The subject and subject alternative names of a verified client certificate."""

    def __init__(self, der: bytes):
        certificate = x509.load_der_x509_certificate(der)
        self.subject = certificate.subject
        try:
            names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            names = []
        self.sans = {_san(str(name.value)) for name in names}

    @classmethod
    def of(cls, sock) -> PeerCertificate | None:
        """The certificate ``sock`` verified during its handshake; None on a plain connection
        or when the caller sent none (``client_certificates: optional``)."""
        if not isinstance(sock, ssl.SSLSocket):
            return None
        try:
            der = sock.getpeercert(binary_form=True)
        except (ValueError, OSError):  # closed meanwhile
            return None
        return cls(der) if der else None

    def matches(self, rule: CallerRule) -> bool:
        if rule.cert_subject is not None and self.subject != x509.Name.from_rfc4514_string(rule.cert_subject):
            return False
        return rule.cert_san is None or _san(rule.cert_san) in self.sans


def _san(value: str) -> str:
    """A SAN as compared: an IP address in its canonical form (``::1`` is ``0::1``), other
    names without case (DNS names have none; a CA does not issue names differing by it)."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value.lower()


def check_called(ingest: IngestConfig, called_ae: str) -> str | None:
    """The refusal reason for an association addressed to another AE title, else None."""
    if ingest.check_called_ae_title and called_ae.strip() != ingest.ae_title:
        return CALLED_AE
    return None


def check_caller(ingest: IngestConfig, ae_title: str, address: str,
                 certificate: PeerCertificate | None) -> str | None:
    """The refusal reason for this caller, or None when an allow-list entry admits it."""
    if ingest.allow_any_caller:
        return None
    furthest = -1
    for rule in ingest.allowed_callers:
        reason = _rule_refuses(rule, ae_title.strip(), address, certificate)
        if reason is None:
            return None
        furthest = max(furthest, _ORDER.index(reason))
    return _ORDER[max(furthest, 0)]


def admits_address(ingest: IngestConfig, address: str) -> bool:
    """Whether some allow-list entry could admit a caller at ``address``, whatever AE title or
    certificate it then presents: False only when every entry is bound to an address (``ip``)
    and none of them is this one. The receiver closes such a connection as soon as it is
    accepted, before a TLS handshake or a PDU costs it anything: a flood from elsewhere then
    takes microseconds of the receiver's time per connection instead of a thread and an
    association's worth of Python."""
    if ingest.allow_any_caller:
        return True
    return any(rule.ip is None or in_network(address, rule.ip) for rule in ingest.allowed_callers)


def _rule_refuses(rule: CallerRule, ae_title: str, address: str,
                  certificate: PeerCertificate | None) -> str | None:
    if rule.ae_title != ae_title:
        return CALLING_AE
    if rule.ip is not None and not in_network(address, rule.ip):
        return ADDRESS
    if rule.needs_certificate:
        if certificate is None:
            return NO_CERTIFICATE
        if not certificate.matches(rule):
            return WRONG_CERTIFICATE
    return None


def open_entry_warnings(ingest: IngestConfig) -> list[str]:
    """Warnings for start-up: off loopback, an entry bound to neither an address nor a
    certificate admits anyone who types its AE title (PS3.15 calls AE titles identification,
    not authentication)."""
    hosts = ([ingest.host] if ingest.plain_listener else []) + \
        ([ingest.tls.host or ingest.host] if ingest.tls else [])
    exposed = [host for host in hosts if not is_loopback(host)]
    if not exposed:
        return []
    where = " and ".join(sorted(set(exposed)))
    if ingest.allow_any_caller:
        return [f"ingest.allow_any_caller is true and the receiver listens on {where}: "
                "ANY sender that reaches the port can store instances"]
    return [f"ingest.allowed_callers[{i}] ({rule.ae_title}) has neither ip nor cert_subject/cert_san, "
            f"and the receiver listens on {where}: ANY sender can claim that AE title"
            for i, rule in enumerate(ingest.allowed_callers)
            if rule.ip is None and not rule.needs_certificate]


def printable(ae_title: str) -> str:
    """An AE title as received, safe for a log line or an audit row (no control characters)."""
    return "".join(c if c.isprintable() and c.isascii() else "?" for c in ae_title.strip())[:16]
