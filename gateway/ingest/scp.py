"""The pynetdicom application entity that hospitals point their PACS at."""

from __future__ import annotations

import logging
from collections.abc import Callable

from pydicom import uid
from pydicom.uid import MPEGTransferSyntaxes
from pynetdicom import AE, AllStoragePresentationContexts
from pynetdicom.sop_class import Verification

from gateway import reactors
from gateway.db import Database
from gateway.ingest import sop_classes
from gateway.ingest.callers import open_entry_warnings
from gateway.ingest.config import IngestConfig
from gateway.ingest.handlers import Receiver
from gateway.storage_config import StorageConfig
from gateway.tls import server_context

log = logging.getLogger("gateway.ingest")

# Every transfer syntax the gateway can store, and later decode for the pixel stage.
ACCEPTED_TRANSFER_SYNTAXES = [
    uid.ExplicitVRLittleEndian,
    uid.ImplicitVRLittleEndian,
    uid.DeflatedExplicitVRLittleEndian,
    uid.ExplicitVRBigEndian,
    uid.RLELossless,
    uid.JPEGBaseline8Bit,
    uid.JPEGExtended12Bit,
    uid.JPEGLossless,
    uid.JPEGLosslessSV1,
    uid.JPEGLSLossless,
    uid.JPEGLSNearLossless,
    uid.JPEG2000Lossless,
    uid.JPEG2000,
    uid.HTJ2KLossless,
    uid.HTJ2KLosslessRPCL,
    uid.HTJ2K,
]
# Video is accepted, then quarantined (no decoder reads its frames for burned-in text: see
# gateway/pixels/decode.py). Last in the list, so that pynetdicom, which takes the first of
# ours that the sender proposes, picks a decodable syntax whenever the sender offers one.
VIDEO_TRANSFER_SYNTAXES = [uid.UID(ts) for ts in MPEGTransferSyntaxes]
STORAGE_TRANSFER_SYNTAXES = ACCEPTED_TRANSFER_SYNTAXES + VIDEO_TRANSFER_SYNTAXES


class SharedContexts(list):
    """The accepted presentation contexts, handed to every association without copying them.

    pynetdicom deep-copies its server's contexts for each association it accepts: 171 storage
    classes × 24 transfer syntaxes, about 20 ms of CPU each time, paid before the first
    C-STORE. Negotiation only reads them (it builds new contexts for its answer), and the one
    place that widens them per association (``sop_classes``) builds a new list, so a shallow
    copy of the list is all each association needs.
    """

    def __deepcopy__(self, memo: dict) -> list:
        return list(self)


def build_ae(ingest: IngestConfig) -> AE:
    reactors.install()
    ae = AE(ae_title=ingest.ae_title)
    ae.maximum_associations = ingest.max_associations
    ae.maximum_pdu_size = ingest.max_pdu_length
    ae.network_timeout = ingest.network_timeout
    ae.dimse_timeout = ingest.network_timeout
    ae.acse_timeout = ingest.network_timeout
    ae.add_supported_context(Verification, ACCEPTED_TRANSFER_SYNTAXES[:4])
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(context.abstract_syntax, STORAGE_TRANSFER_SYNTAXES)
    return ae


def handlers_for(ingest: IngestConfig, receiver: Receiver) -> list:
    """The receiver's handlers, and those admitting unknown SOP classes when the site asks."""
    extra = sop_classes.handlers(STORAGE_TRANSFER_SYNTAXES) if ingest.accept_unknown_sop_classes else []
    return [*receiver.handlers(), *extra]


class Listeners:
    """The receiver's servers (plain, DICOM TLS, or both during a migration), stopped together."""

    def __init__(self, servers: list):
        self.servers = servers

    def shutdown(self) -> None:
        for server in self.servers:
            server.shutdown()


def start_receiver(ingest: IngestConfig, storage: StorageConfig, db: Database, secret: bytes,
                   on_received: Callable[[], object] | None = None) -> Listeners:
    """Start the SCP in background threads; returns its listeners (call ``shutdown()``).
    ``on_received`` is called once instances are recorded (the preparers' wake-up).

    Both listeners serve one AE, with the same handlers and limits: a sender on either is held
    to the same allow-list, and a certificate-bound entry can only match over TLS. A TLS
    setting that cannot be used (a missing file, a key others can read) stops start-up before
    anything listens.
    """
    context = server_context(ingest.tls, "ingest.tls") if ingest.tls else None
    for warning in open_entry_warnings(ingest):
        log.warning("SECURITY: %s", warning)
    ae = build_ae(ingest)
    receiver = Receiver(ingest, storage, db, secret, on_received)
    receiver.receiving.register(ae)  # data sets stream to the spool's receiving folder
    contexts = SharedContexts(ae.supported_contexts)
    servers = []
    try:  # TLS first: once the plain port answers, both do
        if ingest.tls:
            host = ingest.tls.host or ingest.host
            servers.append(ae.start_server((host, ingest.tls.port), block=False,
                                           evt_handlers=handlers_for(ingest, receiver), ssl_context=context, contexts=contexts))
            log.info("receiving as %s over DICOM TLS on %s:%d (client certificates %s)",
                     ingest.ae_title, host, ingest.tls.port, ingest.tls.client_certificates)
        if ingest.plain_listener:
            servers.append(ae.start_server((ingest.host, ingest.port), block=False,
                                           evt_handlers=handlers_for(ingest, receiver), contexts=contexts))
            log.info("receiving as %s on %s:%d", ingest.ae_title, ingest.host, ingest.port)
    except BaseException:
        Listeners(servers).shutdown()
        raise
    return Listeners(servers)
