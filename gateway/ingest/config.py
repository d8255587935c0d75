"""Settings of the DICOM receiver (C-STORE / C-ECHO SCP)."""

from __future__ import annotations

import os
from ipaddress import ip_network
from pathlib import Path
from typing import Literal

from cryptography import x509
from pydantic import Field, field_validator, model_validator

from gateway.settings_base import Section


#: Receiving processes when ``ingest.processes`` is left to the gateway: past a few, the disk's
#: waits and the database's one writer at a time bound ingest, not the cores.
MAX_AUTO_PROCESSES = 4


class PeerIdentity(Section):
    """What binds a peer to an entry beyond a name it could claim: its address (``ip``, an address
    or a network) and its TLS client certificate. ``cert_subject`` is the certificate's whole
    subject, as ``openssl x509 -noout -subject -nameopt RFC2253`` prints it; ``cert_san`` one of
    its subject alternative names (DNS name, IP address, URI or e-mail). When both are given,
    both must match. Shared by C-STORE callers and STOW-RS senders (``web.stow.senders``)."""

    ip: str | None = None
    cert_subject: str | None = None
    cert_san: str | None = None

    @field_validator("ip")
    @classmethod
    def _valid_network(cls, value: str | None) -> str | None:
        if value is not None:
            ip_network(value, strict=False)
        return value

    @field_validator("cert_subject")
    @classmethod
    def _valid_subject(cls, value: str | None) -> str | None:
        if value is not None:
            x509.Name.from_rfc4514_string(value)  # ValueError names what is wrong
        return value

    @property
    def needs_certificate(self) -> bool:
        return self.cert_subject is not None or self.cert_san is not None


class CallerRule(PeerIdentity):
    """One allowed calling application entity.

    An AE title alone is a claim anyone can make, so an entry can also bind the caller to an
    address and to a client certificate (DICOM TLS listener only, verified against
    ``ingest.tls.ca_file``).
    """

    ae_title: str = Field(min_length=1, max_length=16)


class IngestTls(Section):
    """The DICOM TLS listener (PS3.15 Annex B, BCP 195 profiles; see gateway/tls.py)."""

    # DICOM TLS's registered port is 2762; the plain listener keeps ingest.port.
    port: int = Field(default=2762, ge=1, le=65535)
    host: str | None = None  # null: ingest.host
    cert_file: Path  # the gateway's certificate chain (PEM)
    key_file: Path | None = None  # its private key (PEM, mode 0600); null when cert_file holds it
    # The CAs that may sign senders' certificates.
    ca_file: Path | None = None
    # required: no certificate, no connection (mutual authentication); optional: verified when
    # sent (needed by entries with cert_subject/cert_san); none: never asked for.
    client_certificates: Literal["required", "optional", "none"] = "required"
    min_version: Literal["1.2", "1.3"] = "1.2"

    @model_validator(mode="after")
    def _ca_for_clients(self) -> IngestTls:
        if self.client_certificates != "none" and self.ca_file is None:
            raise ValueError("ingest.tls.ca_file is needed to verify client certificates "
                             "(or client_certificates: none)")
        return self


class IngestConfig(Section):
    ae_title: str = Field(default="DEID_GATEWAY", min_length=1, max_length=16)
    # Associations calling any other AE title are rejected ("called AE title not recognised").
    check_called_ae_title: bool = True
    # Loopback by default: a gateway reachable from the network is a decision a site makes,
    # with addresses or certificates in allowed_callers.
    host: str = "127.0.0.1"
    port: int = Field(default=11112, ge=1, le=65535)
    # The plain (unencrypted) listener on host:port; false once every sender uses ingest.tls.
    plain_listener: bool = True
    tls: IngestTls | None = None
    # Over all of the receiver's processes together.
    max_associations: int = Field(default=10, ge=1)
    # Processes that receive, all accepting from the same ports (gateway/ingest/listening.py):
    # associations that arrive together then use every core. Null: one per core, at most
    # MAX_AUTO_PROCESSES; each process holds about 100 MiB.
    processes: int | None = Field(default=None, ge=1, le=64)
    # The longest P-DATA PDU senders may send. 128 KiB (dcmtk's own ceiling) rather than the
    # customary 16 KiB: a 0.5 MB CT slice then arrives in 4 PDUs instead of 32, each one a round
    # of pynetdicom's Python; what is held in memory per association grows by as much.
    max_pdu_length: int = Field(default=131072, ge=0)
    # Seconds an association may stay silent before it is aborted.
    network_timeout: float = Field(default=60.0, gt=0)
    allowed_callers: list[CallerRule] = Field(default_factory=list)
    # Accept any calling AE title. Off by default: a gateway that takes anything from anyone
    # turns into a relay for whatever lands on its port.
    allow_any_caller: bool = False
    # An instance larger than this is refused with 0xA700 rather than filling the disk: the
    # association is aborted as soon as the bytes received pass it, and none of them is kept.
    max_instance_bytes: int = Field(default=2 * 1024**3, gt=0)
    # A deflated data set is refused (0xA700) once inflating it yields more than this. A few
    # hundred kilobytes of deflate can declare gigabytes of zeros; the worker inflates the
    # spooled file again in memory, so this also bounds what it will allocate. None: the same
    # as max_instance_bytes, as if the sender had sent the data set uncompressed.
    max_inflated_bytes: int | None = Field(default=None, gt=0)
    # Largest image a decoder may be asked for: Rows x Columns x frames x samples x bytes per
    # sample, as the header declares it (native or compressed; a 1 KB RLE file can declare
    # 20000 x 20000 pixels, and the decoder allocates what is declared). 1 GiB holds a
    # 1000-slice 512x512 16-bit volume, far past what modalities send as one instance.
    max_pixel_bytes: int = Field(default=1024**3, gt=0)
    # Most frames one instance may declare. Decoders keep per-frame bookkeeping, so a
    # million one-pixel frames costs memory and time that max_pixel_bytes does not see.
    # Long ultrasound or angiography cines have a few thousand frames.
    max_frames: int = Field(default=50_000, gt=0)
    # Storage SOP classes pynetdicom does not know: vendors' private ones, and public ones newer
    # than it (Orthanc's UnknownSopClassAccepted). Off by default: a private class is whatever
    # its vendor made it, often private attributes around proprietary data. When on, they are
    # handled like every other instance: private attributes removed (safe ones kept under
    # retain_safe_private), pixel data checked by the pixel stage or quarantined, and rules
    # (match: {sop_class: ...}) can drop them.
    accept_unknown_sop_classes: bool = False

    @model_validator(mode="after")
    def _something_listens(self) -> IngestConfig:
        if not self.plain_listener and self.tls is None:
            raise ValueError("plain_listener is false and ingest.tls is not set: nothing would listen")
        if self.plain_listener and self.tls is not None and self.tls.port == self.port \
                and (self.tls.host or self.host) == self.host:
            raise ValueError("ingest.tls.port must differ from ingest.port while plain_listener is on")
        return self

    @property
    def process_count(self) -> int:
        """How many processes receive (``processes``, or one per core this process may use)."""
        if self.processes is not None:
            return self.processes
        return max(1, min(MAX_AUTO_PROCESSES, len(os.sched_getaffinity(0))))

    @property
    def inflated_limit(self) -> int:
        """Bytes a deflated data set may inflate to (see ``max_inflated_bytes``)."""
        return self.max_inflated_bytes or self.max_instance_bytes

    @field_validator("ae_title")
    @classmethod
    def _ae_title_chars(cls, value: str) -> str:
        if value != value.strip() or "\\" in value:
            raise ValueError("AE titles have no leading/trailing spaces and no backslash")
        return value
