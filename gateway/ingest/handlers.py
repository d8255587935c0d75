"""One handler per DIMSE service, plus the association policy.

The C-STORE handler answers success only after the instance is on disk (fsynced) and its row
is committed; instances arriving on concurrent associations share those waits
(:mod:`gateway.ingest.commit`). Every other path ends in a failure status the sender can act
on, and an instance that cannot be understood is kept in quarantine for review.

An instance arrives as a file in the spool's receiving folder (:mod:`gateway.ingest.receiving`)
and is validated from that file; accepted, it is renamed into the spool, never copied, so
memory per association stays at a few PDUs whatever the instance's size.
"""

from __future__ import annotations

import errno
import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from pynetdicom import evt

from gateway.audit import events as audit
from gateway.db import Database
from gateway.files import free_bytes, fsync_file, hashed_path, move_durably
from gateway.ingest import callers, refusals
from gateway.ingest.callers import REJECT_BUSY, REJECT_CALLED_AE, REJECT_CALLING_AE, PeerCertificate
from gateway.ingest.capacity import ConnectionCount
from gateway.ingest.commit import GroupCommitter
from gateway.ingest.config import IngestConfig
from gateway.ingest.handshake import shake_hands
from gateway.ingest.receiving import IncomingFile, ReceivingArea
from gateway.ingest.validate import OUT_OF_RESOURCES, InvalidInstance, validate_file
from gateway.queue.intake import Intake
from gateway.queue.tables import QuarantineEntry, Study
from gateway.sockets import NO_DELAY
from gateway.storage_config import StorageConfig

log = logging.getLogger("gateway.ingest")

SUCCESS = 0x0000
PROCESSING_FAILURE = 0x0110
TOO_LARGE = "instance larger than ingest.max_instance_bytes"

@dataclass
class _AssociationTally:
    calling_ae: str
    received: Counter = field(default_factory=Counter)  # study id -> new instances
    refused: int = 0


#: An association request carries its presentation contexts and user information in one PDU,
#: whatever maximum length is advertised for P-DATA; this much is always accepted for it.
MIN_PDU_BYTES = 256 * 1024


def max_pdu_bytes(ingest: IngestConfig) -> int:
    """The longest PDU the receiver reads: what it advertises (``max_pdu_length``) plus the PDU
    header, at least MIN_PDU_BYTES; with no maximum advertised (0), an instance's limit."""
    if ingest.max_pdu_length == 0:
        return ingest.max_instance_bytes
    return max(MIN_PDU_BYTES, ingest.max_pdu_length + 6)


class Receiver:
    """Holds what the handlers share: configuration, database, secret, per-association tallies."""

    def __init__(self, ingest: IngestConfig, storage: StorageConfig, db: Database, secret: bytes,
                 on_received: Callable[[], object] | None = None, count: ConnectionCount | None = None):
        self.ingest = ingest
        self.count = count or ConnectionCount()  # associations open in every receiving process
        self.min_free_bytes = storage.min_free_bytes
        self.db = db
        self.secret = secret
        self.spool = storage.spool
        self.quarantine = storage.quarantine
        self.receiving = ReceivingArea(
            storage.spool / "receiving", ingest.max_instance_bytes, on_exceeded=self.on_too_large,
            max_pdu_bytes=max_pdu_bytes(ingest),
        )
        self.committer = GroupCommitter(db, secret, storage.spool, on_committed=on_received)
        self._tallies: dict[int, _AssociationTally] = {}
        self._lock = threading.Lock()
        # Call ``flush_refusals()`` when stopping.
        self.refusals = refusals.RefusalLedger(self._audit_count)
        self.screened = refusals.RefusalLedger(self._audit_count, per_minute=refusals.SCREENED_ONE_BY_ONE_PER_MINUTE)

    # -- association policy ------------------------------------------------------------
    def admits_connection(self, address: str) -> bool:
        """Whether a connection just accepted from ``address`` may go on; one that no allow-list
        entry could admit (see :func:`callers.admits_address`) is refused and audited, and the
        listener closes it before a TLS handshake or a PDU."""
        if callers.admits_address(self.ingest, address):
            return True
        reason = callers.UNLISTED_ADDRESS
        if self.screened.one_by_one(audit.REJECTED_ASSOCIATION, address, reason=reason):
            log.warning("refused a connection from %s: %s", address, reason)
            self._audit(audit.REJECTED_ASSOCIATION, reason=reason, address=address)
        return False

    def flush_refusals(self) -> None:
        """Write the refusals counted but not yet written (the receiver stops)."""
        self.refusals.flush()
        self.screened.flush()

    def on_connection_open(self, event: evt.Event) -> None:
        """On the TLS listener: complete the handshake here, in the connection's thread, and
        audit a failure (see :mod:`gateway.ingest.handshake`); the connection is then closed."""
        assoc_socket = event.assoc.dul.socket
        outcome = shake_hands(assoc_socket.socket, self.ingest.network_timeout)
        if outcome.ok:
            return
        address = event.address[0]
        if outcome.reason is None:
            log.debug("a connection from %s closed before its TLS handshake", address)
        elif self.refusals.one_by_one(audit.TLS_FAILURE, address, direction="ingest", reason=outcome.reason):
            log.warning("TLS handshake from %s failed: %s", address, outcome.reason)
            self._audit(audit.TLS_FAILURE, direction="ingest", address=address, reason=outcome.reason)
        assoc_socket.close()  # the association then ends before any PDU is read

    def on_requested(self, event: evt.Event) -> None:
        """Reject, and audit with its reason, an association not addressed to this gateway or
        from a caller no allow-list entry admits, or one past ``max_associations`` in all
        receiving processes together; nothing else the request carried is kept."""
        assoc = event.assoc
        calling_ae = callers.printable(assoc.requestor.primitive.calling_ae_title)
        address = assoc.requestor.address
        refusal = self._refusal(assoc, calling_ae, address)
        if refusal is None:
            return
        reason, rejection = refusal
        if self.refusals.one_by_one(audit.REJECTED_ASSOCIATION, address, reason=reason, calling_ae=calling_ae):
            log.warning("rejected an association from %s (%s): %s", calling_ae, address, reason)
            self._audit(audit.REJECTED_ASSOCIATION, reason=reason, calling_ae=calling_ae, address=address)
        assoc.acse.send_reject(*rejection)
        self.count.ended(assoc)
        # As pynetdicom does after its own rejections: let the DUL flush the A-ASSOCIATE-RJ
        # before the socket is shut.
        assoc.kill()

    def _refusal(self, assoc, calling_ae: str, address: str) -> tuple[str, tuple] | None:
        """Why the association is refused, and how the A-ASSOCIATE-RJ says so; None to accept."""
        reason = callers.check_called(self.ingest, assoc.requestor.primitive.called_ae_title)
        if reason is not None:
            return reason, REJECT_CALLED_AE
        certificate = PeerCertificate.of(assoc.dul.socket.socket if assoc.dul.socket else None)
        reason = callers.check_caller(self.ingest, calling_ae, address, certificate)
        if reason is not None:
            return reason, REJECT_CALLING_AE
        if not self.count.within(self.ingest.max_associations, assoc.ae):  # this one included
            return callers.BUSY, REJECT_BUSY
        return None

    def _audit(self, event: str, **detail) -> None:
        audit.record_alone(self.db, event, actor="receiver", **detail)  # a refusal stands either way

    def _audit_count(self, event: str, detail: dict) -> None:
        """An address's refusals of a minute past those recorded one by one (see
        :mod:`gateway.ingest.refusals`)."""
        log.warning("%d more refusals from %s in a minute: %s", detail["refusals"], detail["address"], detail["reason"])
        self._audit(event, **detail)

    def on_established(self, event: evt.Event) -> None:
        with self._lock:
            self._tallies[id(event.assoc)] = _AssociationTally(event.assoc.requestor.ae_title)

    def on_connection_closed(self, event: evt.Event) -> None:
        """Free the place of an association whose connection closed (released, aborted, or a port
        probe that never asked for one) in every process's count at once."""
        self.count.ended(event.assoc)

    def on_closed(self, event: evt.Event) -> None:
        """Free the association's place in every process's count at once, then audit what it
        delivered: counts per study, never values."""
        self.count.publish(event.assoc.ae)
        with self._lock:
            tally = self._tallies.pop(id(event.assoc), None)
        if tally is None or (not tally.received and not tally.refused):
            return
        with self.db.session() as session:
            for study_id, count in tally.received.items():
                study = session.get(Study, study_id)
                audit.record(
                    session, audit.RECEIVED, study=study, actor="receiver",
                    calling_ae=tally.calling_ae, instances=count,
                )
            if tally.refused:
                audit.record(
                    session, audit.REFUSED, actor="receiver",
                    calling_ae=tally.calling_ae, instances=tally.refused,
                )

    # -- services --------------------------------------------------------------------------
    def on_echo(self, event: evt.Event) -> int:
        return SUCCESS

    def on_store(self, event: evt.Event) -> int:
        tally = self._tallies.get(id(event.assoc))
        incoming = self.receiving.claim(event)
        if incoming is None:
            log.error("a C-STORE data set has no file in the receiving folder; refused")
            return PROCESSING_FAILURE
        if incoming.exceeded:
            incoming.discard()
            return OUT_OF_RESOURCES  # already refused, audited and aborted by on_too_large
        if incoming.disk_full:
            incoming.discard()
            log.error("refusing an instance: the spool's disk is full")
            if tally is not None:
                tally.refused += 1
            return OUT_OF_RESOURCES
        try:
            status = self._store(event, incoming)
        finally:
            incoming.discard()  # still there unless moved into the spool or the quarantine
        if tally is not None and status != SUCCESS:
            tally.refused += 1
        return status

    def on_too_large(self, assoc) -> None:
        """An instance passed max_instance_bytes while arriving: refuse it and abort the
        association now rather than receive the rest (its partial file is already gone)."""
        tally = self._tallies.get(id(assoc))
        if tally is not None:
            tally.refused += 1
        try:
            self._quarantine(TOO_LARGE, assoc.requestor.ae_title)
        except Exception as exc:  # the abort below must happen even if the database is away
            log.error("cannot record a refused instance: %s", type(exc).__name__)
        # In pynetdicom's reader thread: queue the A-ABORT, do not wait for it to be sent.
        assoc.abort(block=False)

    def _store(self, event: evt.Event, incoming: IncomingFile) -> int:
        calling_ae = event.assoc.requestor.ae_title
        # The instance already occupies its space: keep the margin for the rest of the spool.
        if free_bytes(self.spool) < self.min_free_bytes:
            log.error("refusing an instance: spool free space below storage.min_free_bytes")
            return OUT_OF_RESOURCES

        request = event.request
        try:
            header = validate_file(incoming.path, str(request.AffectedSOPClassUID),
                                   str(request.AffectedSOPInstanceUID), self.ingest)
        except InvalidInstance as exc:
            self._quarantine(exc.reason, calling_ae, incoming)
            return exc.status

        try:
            fsync_file(incoming.path)  # here, in parallel with the other associations' files
            recorded = self.committer.record(incoming.path, header, incoming.digest, incoming.size, calling_ae,
                                             calling_address=event.assoc.requestor.address)
        except OSError as exc:
            log.error("cannot write to the spool: %s", errno.errorcode.get(exc.errno, "error"))
            return OUT_OF_RESOURCES if exc.errno in (errno.ENOSPC, errno.EDQUOT) else PROCESSING_FAILURE
        except Exception as exc:
            log.error("cannot record a received instance: %s", type(exc).__name__)
            return PROCESSING_FAILURE
        tally = self._tallies.get(id(event.assoc))
        if tally is not None and recorded.outcome is not Intake.DUPLICATE:
            tally.received[recorded.study_id] += 1
        return SUCCESS

    def _quarantine(self, reason: str, calling_ae: str, received: IncomingFile | None = None) -> None:
        """Record a refused instance; move its file, whole, under quarantine/received.

        An instance refused for passing max_instance_bytes keeps no bytes: its partial file
        is deleted as soon as the limit is passed (``received`` is None). Every other refused
        instance arrived whole within that limit and is kept as received.
        """
        path = None
        if received is not None:
            path = hashed_path(self.quarantine / "received", received.digest, suffix=".bin")
            try:
                move_durably(received.path, path)
            except OSError:
                path = None
        log.warning("refused an instance from %s: %s", calling_ae, reason)
        with self.db.session() as session:
            session.add(
                QuarantineEntry(
                    stage="ingest", reason=reason, path=str(path) if path else None, calling_ae=calling_ae
                )
            )
            audit.record(session, audit.QUARANTINED, actor="receiver", stage="ingest", reason=reason)

    def handlers(self) -> list:
        return [
            NO_DELAY,
            (evt.EVT_CONN_OPEN, self.on_connection_open),
            (evt.EVT_REQUESTED, self.on_requested),
            (evt.EVT_ESTABLISHED, self.on_established),
            (evt.EVT_RELEASED, self.on_closed),
            (evt.EVT_ABORTED, self.on_closed),
            (evt.EVT_CONN_CLOSE, self.on_connection_closed),
            (evt.EVT_C_ECHO, self.on_echo),
            (evt.EVT_C_STORE, self.on_store),
            *self.receiving.handlers(),
        ]
