"""The pynetdicom application entity that hospitals point their PACS at."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from pydicom import uid
from pydicom.uid import MPEGTransferSyntaxes
from pynetdicom import AE, AllStoragePresentationContexts
from pynetdicom.sop_class import Verification

from gateway import reactors
from gateway.db import Database
from gateway.ingest import sop_classes
from gateway.ingest.callers import open_entry_warnings
from gateway.ingest.capacity import ConnectionCount
from gateway.ingest.config import IngestConfig
from gateway.ingest.handlers import Receiver
from gateway.ingest.listening import Listening, bind, serve
from gateway.storage_config import StorageConfig
from gateway.tls import server_context

log = logging.getLogger("gateway.ingest")

#: Connections that may wait to be accepted while every receiving process is busy (at least
#: ``ingest.max_associations``).
LISTEN_BACKLOG = 16

#: Association threads a process may run past ``ingest.max_associations``: pynetdicom's own
#: ceiling. The limit itself is the handlers' (over every process, and not counting associations
#: that are over: see :mod:`gateway.ingest.capacity`). pynetdicom counts a thread until it ends,
#: and the threads of associations just over still run for a while (auditing what they
#: delivered, on a busy database for longer): set at the limit, or at twice a limit of 1, its
#: ceiling refused a sender's next association while they wound down. It still bounds them.
THREAD_HEADROOM = 32

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
    ae.maximum_associations = ingest.max_associations + THREAD_HEADROOM
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
    """The receiver's servers in this process (plain, DICOM TLS, or both during a migration),
    stopped together; then ``closing`` runs (the refusals counted but not yet written)."""

    def __init__(self, servers: list, closing: Callable[[], object] | None = None):
        self.servers = servers
        self.closing = closing

    def shutdown(self) -> None:
        for server in self.servers:
            server.shutdown()
        if self.closing is not None:
            self.closing()


def open_listeners(ingest: IngestConfig) -> list[Listening]:
    """Bind the receiver's ports for every receiving process to accept from (see
    :mod:`gateway.ingest.listening`); none listens before :func:`start_listening`. A port that is
    taken, or a TLS setting that cannot be used (a missing file, a key others can read), stops
    start-up here."""
    if ingest.tls:
        server_context(ingest.tls, "ingest.tls")
    for warning in open_entry_warnings(ingest):
        log.warning("SECURITY: %s", warning)
    opened: list[Listening] = []
    try:
        if ingest.tls:
            opened.append(bind(ingest.tls.host or ingest.host, ingest.tls.port, tls=True))
        if ingest.plain_listener:
            opened.append(bind(ingest.host, ingest.port, tls=False))
    except BaseException:
        close_listeners(opened)
        raise
    return opened


def start_listening(ingest: IngestConfig, listening: list[Listening]) -> None:
    """Answer connections, TLS first: once the plain port answers, both do."""
    backlog = max(LISTEN_BACKLOG, ingest.max_associations)
    for each in listening:
        each.listen(backlog)
        host, port = each.address[:2]
        if each.tls:
            log.info("receiving as %s over DICOM TLS on %s:%d (client certificates %s)",
                     ingest.ae_title, host, port, ingest.tls.client_certificates)
        else:
            log.info("receiving as %s on %s:%d", ingest.ae_title, host, port)


def close_listeners(listening: list[Listening]) -> None:
    for each in listening:
        each.sock.close()


def start_receiver(ingest: IngestConfig, storage: StorageConfig, db: Database, secret: bytes,
                   on_received: Callable[[], object] | None = None, listening: list[Listening] | None = None,
                   count: ConnectionCount | None = None) -> Listeners:
    """Receive in background threads of this process; returns its listeners (call ``shutdown()``).
    ``on_received`` is called once instances are recorded (the preparers' wake-up).

    ``listening`` are the sockets bound by :func:`open_listeners`, shared with the other
    receiving processes, whose connections ``count`` adds up; whoever bound them makes them
    listen. By default this process binds its own, receives alone, and listens at once. Both
    listeners serve one AE, with the same handlers and limits: a sender on either is held to the
    same allow-list, and a certificate-bound entry can only match over TLS.
    """
    alone = listening is None
    if alone:
        listening = open_listeners(ingest)
    count = count or ConnectionCount()
    context = server_context(ingest.tls, "ingest.tls") if ingest.tls else None
    ae = build_ae(ingest)
    receiver = Receiver(ingest, storage, db, secret, on_received, count=count)
    receiver.receiving.register(ae)  # data sets stream to the spool's receiving folder
    contexts = SharedContexts(ae.supported_contexts)
    listeners = Listeners([serve(ae, each, context if each.tls else None, handlers_for(ingest, receiver), contexts,
                                 count, screen=receiver.admits_connection) for each in listening],
                          closing=receiver.flush_refusals)
    if alone:
        start_listening(ingest, listening)
    return listeners


def receive_in_child(config, listening: list[Listening], count: ConnectionCount, secret: bytes,
                     arrivals, started, done: threading.Event) -> None:
    """One more receiving process under ``serve`` (``ingest.processes``; see
    :mod:`gateway.children`): its own database engine and application entity on the shared
    sockets, ready (``started``) once it accepts, ringing ``arrivals`` (the preparers' wake-up)
    after each batch it records, until ``done``."""
    from gateway.children import get_ready
    from gateway.logs import setup_logging

    setup_logging(config.logging)
    db = Database(config.database.url)
    try:
        listeners = get_ready(started, lambda: start_receiver(
            config.ingest, config.storage, db, secret, arrivals.set, listening, count), "a receiving process")
        if listeners is None:
            return
        done.wait()
        listeners.shutdown()
    finally:
        db.dispose()
