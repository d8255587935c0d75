"""Instances received over DICOMweb STOW-RS: the spool and the queue, as for C-STORE.

The HTTP side (:mod:`gateway.web.stow`) hands each part of a ``multipart/related`` request to a
:class:`PartFile` as it streams in: a private temporary file in ``<spool>/receiving``, hashed as
it is written, dropped the moment it passes its size limit. A complete part is then checked and
recorded exactly as a C-STORE data set is (:mod:`gateway.ingest.handlers`): the same strict
validation (:func:`gateway.ingest.validate.validate_file`), the same group committer (a durable
rename into the spool and the intake row, :mod:`gateway.ingest.commit`) before the sender is
told "stored", and the same quarantine for what cannot be understood. The SOP Class and Instance
UIDs a C-STORE request carries come, for a part, from its file meta information.

Nothing here quotes a value of a dataset: reasons are the fixed phrases of the validator, and
what the sender is told about an instance is its own SOP UIDs, as PS3.18 requires.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gateway.audit import events as audit
from gateway.db import Database
from gateway.files import (
    TEMPORARY_PREFIX,
    free_bytes,
    fsync_file,
    hashed_path,
    make_dirs_durably,
    move_durably,
)
from gateway.ingest.commit import GroupCommitter
from gateway.ingest.config import IngestConfig
from gateway.ingest.validate import (
    CANNOT_UNDERSTAND,
    DATASET_DOES_NOT_MATCH_SOP_CLASS,
    OUT_OF_RESOURCES,
    InvalidInstance,
    read_file_meta,
    validate_file,
)
from gateway.queue.intake import Intake
from gateway.queue.tables import QuarantineEntry, Study
from gateway.storage_config import StorageConfig

log = logging.getLogger("gateway.ingest.stow")

PROCESSING_FAILURE = 0x0110  # as the C-STORE handler answers: the sender should retry
TOO_LARGE = "instance larger than the STOW-RS part limit"
DISK_FULL = "the spool's disk is full"
NOT_DICOM = "part is not application/dicom"
OTHER_STUDY = "Study Instance UID differs from the request"
NO_MEDIA_UIDS = "file meta information lacks the SOP Class or Instance UID"
NOT_RECORDED = "the instance could not be recorded"
MEDIA_STORAGE_SOP_CLASS, MEDIA_STORAGE_SOP_INSTANCE = 0x00020002, 0x00020003
ACTOR = "stow-rs"


@dataclass(frozen=True)
class Sender:
    """Who sent a request, as the queue and the audit trail know senders."""

    name: str
    calling_ae: str
    address: str | None


@dataclass(frozen=True)
class Outcome:
    """What became of one part. ``status`` is None when the instance is stored (or was already);
    else a C-STORE failure status, with its reason from the fixed vocabulary."""

    sop_class_uid: str | None = None
    sop_instance_uid: str | None = None
    status: int | None = None
    reason: str | None = None
    study_id: int | None = None
    new: bool = False

    @property
    def stored(self) -> bool:
        return self.status is None

    @property
    def too_large(self) -> bool:
        return self.reason == TOO_LARGE


class PartFile:
    """One part as it arrives: a 0600 temporary file of the receiving folder, hashed on the way.

    Past ``limit`` bytes the file is deleted at once and the rest of the part is dropped; on a
    full disk likewise. Either way the part is refused when it ends, and nothing of it is kept.
    """

    def __init__(self, directory: Path, limit: int):
        self.limit = limit
        self._file = tempfile.NamedTemporaryFile(mode="wb", dir=directory, prefix=TEMPORARY_PREFIX, delete=False)
        self.path = Path(self._file.name)
        self._hash = hashlib.sha256()
        self.size = 0
        self.exceeded = False
        self.disk_full = False

    def write(self, data: bytes) -> None:
        if self.exceeded or self.disk_full:
            return
        self.size += len(data)
        if self.size > self.limit:
            self.exceeded = True
            self.discard()
            return
        try:
            self._file.write(data)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            self.disk_full = True
            self.discard()
            return
        self._hash.update(data)

    def close(self) -> None:
        """The part has ended: flush it (fsync comes with the move into the spool)."""
        if self._file.closed:
            return
        try:
            self._file.close()
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            self.disk_full = True
            self.discard()

    @property
    def digest(self) -> str:
        return self._hash.hexdigest()

    def discard(self) -> None:
        """Delete whatever is still at the temporary name (nothing once moved)."""
        try:
            self._file.close()
        except OSError:
            pass
        self.path.unlink(missing_ok=True)


class StowIntake:
    """Checks and records the parts of STOW-RS requests; shared by all requests of a server."""

    def __init__(self, ingest: IngestConfig, storage: StorageConfig, db: Database, secret: bytes,
                 max_part_bytes: int | None = None):
        self.ingest, self.db, self.secret = ingest, db, secret
        self.spool, self.quarantine = storage.spool, storage.quarantine
        self.min_free_bytes = storage.min_free_bytes
        self.max_part_bytes = max_part_bytes or ingest.max_instance_bytes
        self.receiving = storage.spool / "receiving"
        self.committer = GroupCommitter(db, secret, storage.spool)

    def open_part(self) -> PartFile:
        if not self.receiving.is_dir():
            make_dirs_durably(self.receiving)
            os.chmod(self.receiving, 0o700)
        return PartFile(self.receiving, self.max_part_bytes)

    def store(self, part: PartFile, sender: Sender, study_uid: str | None = None) -> Outcome:
        """Validate, spool and record one complete part; never raises for the part's content."""
        try:
            part.close()
            if part.exceeded:
                return self.refuse(TOO_LARGE, OUT_OF_RESOURCES, sender)
            if part.disk_full or free_bytes(self.spool) < self.min_free_bytes:
                log.error("refusing a STOW-RS instance: spool free space below storage.min_free_bytes")
                return Outcome(status=OUT_OF_RESOURCES, reason=DISK_FULL)
            return self._store(part, sender, study_uid)
        finally:
            part.discard()  # still there unless moved into the spool or the quarantine

    def _store(self, part: PartFile, sender: Sender, study_uid: str | None) -> Outcome:
        sop_class = sop_instance = None
        try:
            sop_class, sop_instance = media_storage_uids(part.path)
            header = validate_file(part.path, sop_class, sop_instance, self.ingest)
            if study_uid is not None and header.study_instance_uid != study_uid:
                raise InvalidInstance(DATASET_DOES_NOT_MATCH_SOP_CLASS, OTHER_STUDY)
        except InvalidInstance as exc:
            outcome = self.refuse(exc.reason, exc.status, sender, part)
            return Outcome(sop_class, sop_instance, outcome.status, outcome.reason)
        try:
            fsync_file(part.path)
            # The receiver's own way into the spool: a resend of what C-STORE brought is found by
            # its row, not by a file name, and a copy moved in for nothing is removed again.
            recorded = self.committer.record(part.path, header, part.digest, part.size, sender.calling_ae,
                                             calling_address=sender.address)
        except OSError as exc:
            log.error("cannot write a STOW-RS instance to the spool: %s", errno.errorcode.get(exc.errno, "error"))
            status = OUT_OF_RESOURCES if exc.errno in (errno.ENOSPC, errno.EDQUOT) else PROCESSING_FAILURE
            return Outcome(sop_class, sop_instance, status, NOT_RECORDED)
        except Exception as exc:
            log.error("cannot record a STOW-RS instance: %s", type(exc).__name__)
            return Outcome(sop_class, sop_instance, PROCESSING_FAILURE, NOT_RECORDED)
        return Outcome(sop_class, sop_instance, study_id=recorded.study_id,
                       new=recorded.outcome is not Intake.DUPLICATE)

    def refuse(self, reason: str, status: int, sender: Sender, part: PartFile | None = None) -> Outcome:
        """Quarantine a refused part as the C-STORE receiver does: whole, under
        quarantine/received, unless it was dropped for its size (then nothing of it is kept)."""
        path = None
        if part is not None and not part.exceeded and part.path.exists():
            path = hashed_path(self.quarantine / "received", part.digest, suffix=".bin")
            try:
                move_durably(part.path, path)
            except OSError:
                path = None
        log.warning("refused a STOW-RS instance from %s: %s", sender.name, reason)
        try:
            with self.db.session() as session:
                session.add(QuarantineEntry(stage="ingest", reason=reason, path=str(path) if path else None,
                                            calling_ae=sender.calling_ae))
                audit.record(session, audit.QUARANTINED, actor=ACTOR, stage="ingest", reason=reason)
        except Exception as exc:  # the refusal stands even when the database is away
            log.error("cannot record a refused STOW-RS instance: %s", type(exc).__name__)
        return Outcome(status=status, reason=reason)

    def not_dicom(self, sender: Sender) -> Outcome:
        """A part of another media type: refused unread (nothing of it is written)."""
        log.warning("refused a STOW-RS part from %s: %s", sender.name, NOT_DICOM)
        return Outcome(status=CANNOT_UNDERSTAND, reason=NOT_DICOM)

    def audit_request(self, sender: Sender, outcomes: list[Outcome]) -> None:
        """What one request delivered, as the receiver audits an association: new instances per
        study, and how many were refused; counts only."""
        received: dict[int, int] = {}
        for outcome in outcomes:
            if outcome.stored and outcome.new:
                received[outcome.study_id] = received.get(outcome.study_id, 0) + 1
        refused = sum(1 for o in outcomes if not o.stored)
        if not received and not refused:
            return
        try:
            with self.db.session() as session:
                for study_id, count in received.items():
                    audit.record(session, audit.RECEIVED, study=session.get(Study, study_id), actor=ACTOR,
                                 calling_ae=sender.calling_ae, sender=sender.name, instances=count)
                if refused:
                    audit.record(session, audit.REFUSED, actor=ACTOR, calling_ae=sender.calling_ae,
                                 sender=sender.name, instances=refused)
        except Exception as exc:
            log.error("cannot audit a STOW-RS request: %s", type(exc).__name__)


def media_storage_uids(path: Path) -> tuple[str, str]:
    """The SOP Class and Instance UIDs of a part's file meta, which stand in for the C-STORE
    request's Affected SOP Class/Instance UIDs (the data set must carry the same)."""
    with open(path, "rb") as f:
        found = read_file_meta(f, frozenset({MEDIA_STORAGE_SOP_CLASS, MEDIA_STORAGE_SOP_INSTANCE}))
    uids = [found[MEDIA_STORAGE_SOP_CLASS], found[MEDIA_STORAGE_SOP_INSTANCE]]
    if not all(uids):
        raise InvalidInstance(CANNOT_UNDERSTAND, NO_MEDIA_UIDS)
    return uids[0], uids[1]
