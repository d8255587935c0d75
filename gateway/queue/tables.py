"""State of the gateway: studies, instances, jobs, de-identified outputs and deliveries, and
the pulls (query/retrieve) that bring studies in.

No column holds patient data. Studies and instances are keyed by a keyed hash of their
original UID (so a repeat of the same instance is recognised without storing the UID), and
shown by their de-identified UID once the worker has made one.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gateway.schema import Base


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class StudyState:
    RECEIVING = "receiving"  # instances arriving; not yet quiet for stable_after seconds
    READY = "ready"  # quiet; a job waits for a worker
    PROCESSING = "processing"
    FORWARDING = "forwarding"
    DONE = "done"
    FAILED = "failed"


class InstanceState:
    RECEIVED = "received"
    QUEUED = "queued"  # part of a job
    PROCESSED = "processed"  # de-identified outputs written
    DELIVERED = "delivered"  # every destination accepted it
    QUARANTINED = "quarantined"
    FAILED = "failed"
    DROPPED = "dropped"  # a rule said it must not leave: never de-identified nor forwarded


class JobState:
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class JobPhase:
    """What a job still needs, so that workers of different roles can share one queue."""

    PIXELS = "pixels"  # the instance stages (pixel stage) have still to run
    HEADERS = "headers"  # only the header stages remain


class WorkerRole:
    """Which jobs a worker takes: ``all`` runs whole jobs; ``pixels`` (a GPU host) runs only
    the instance stages and hands the job on; ``headers`` (CPU hosts) finishes handed-on jobs."""

    ALL = "all"
    PIXELS = "pixels"
    HEADERS = "headers"
    CHOICES = (ALL, PIXELS, HEADERS)


class DeliveryState:
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(primary_key=True)
    # HMAC of the original StudyInstanceUID: identifies the study without revealing it.
    study_key: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    # De-identified StudyInstanceUID, known once the first instance was processed.
    anon_uid: Mapped[str | None] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(16), default=StudyState.RECEIVING, index=True)
    calling_ae: Mapped[str | None] = mapped_column(String(16))
    first_received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    instances: Mapped[list[Instance]] = relationship(back_populates="study")

    @property
    def label(self) -> str:
        """How people see this study: its de-identified UID, or a key prefix before that."""
        return self.anon_uid or f"key:{self.study_key[:16]}"


class Instance(Base):
    __tablename__ = "instances"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    # HMAC of the original SOPInstanceUID.
    sop_key: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    anon_uid: Mapped[str | None] = mapped_column(String(64))
    sop_class_uid: Mapped[str] = mapped_column(String(64))
    transfer_syntax_uid: Mapped[str] = mapped_column(String(64))
    # Spool file, named by the SHA-256 of its bytes.
    spool_path: Mapped[str | None] = mapped_column(String(512))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default=InstanceState.RECEIVED, index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), index=True)
    # The instance after the instance stages ran, while it waits for a header worker: the
    # file (original header, cleaned pixels, so kept beside the spool) and, as JSON, the
    # options those stages declared and their reports (counts and coordinates only).
    intermediate_path: Mapped[str | None] = mapped_column(String(512))
    intermediate_context: Mapped[str | None] = mapped_column(Text)
    # The pixel stage run ahead, while the study was still arriving (gateway.pipeline.prepare):
    # for the version whose SHA-256 is ``prepared_sha256`` (a newer version makes it stale), the
    # options and reports as JSON, and the cleaned file (None: pixel data unchanged, the spool
    # file serves). A context of None says "not prepared: the job runs the stages itself".
    # While a preparer holds the instance, its lease (owner, expiry) and the attempts so far.
    prepared_sha256: Mapped[str | None] = mapped_column(String(64))
    prepared_path: Mapped[str | None] = mapped_column(String(512))
    prepared_context: Mapped[str | None] = mapped_column(Text)
    prepare_owner: Mapped[str | None] = mapped_column(String(128))
    prepare_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    prepare_attempts: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    error: Mapped[str | None] = mapped_column(Text)
    # Who sent this version (rules match on them): the calling AE title and the peer's
    # address. NULL on rows from before they were kept: the study's calling_ae stands in.
    calling_ae: Mapped[str | None] = mapped_column(String(16))
    calling_address: Mapped[str | None] = mapped_column(String(64))

    study: Mapped[Study] = relationship(back_populates="instances")


class Job(Base):
    """One round of de-identification over the instances of a study that were waiting.

    Instances arriving while a job runs are left out of it and form the study's next job.
    """

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default=JobState.PENDING, index=True)
    # None on rows made before phases existed: treated as PIXELS, the safe reading.
    phase: Mapped[str | None] = mapped_column(String(16), default=JobPhase.PIXELS, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    error: Mapped[str | None] = mapped_column(Text)


class PreparerSeen(Base):
    """A live preparer (gateway.pipeline.prepare), last seen at ``seen_at``: while one is, the
    scheduler lets a study's job wait for its instances to be prepared; with none seen for a
    lease, jobs run the pixel stage themselves, as before preparers existed."""

    __tablename__ = "preparers"

    owner: Mapped[str] = mapped_column(String(128), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Output(Base):
    """A de-identified instance in the outbox, for one profile."""

    __tablename__ = "outputs"
    __table_args__ = (UniqueConstraint("instance_id", "profile"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"), index=True)
    profile: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(512))
    anon_uid: Mapped[str] = mapped_column(String(64))
    sop_class_uid: Mapped[str] = mapped_column(String(64))
    transfer_syntax_uid: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Delivery(Base):
    """One output to one destination, with its retry state."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("output_id", "destination"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    output_id: Mapped[int] = mapped_column(ForeignKey("outputs.id"), index=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    destination: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(16), default=DeliveryState.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_status: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)

    output: Mapped[Output] = relationship()


class QuarantineEntry(Base):
    """An input that was refused or kept back, with a reason that carries no patient data."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    stage: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    path: Mapped[str | None] = mapped_column(String(512))
    calling_ae: Mapped[str | None] = mapped_column(String(16))
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("instances.id"))
    study_id: Mapped[int | None] = mapped_column(ForeignKey("studies.id"))


class PullItemState:
    PENDING = "pending"  # not queried yet (or interrupted before its query answered)
    FOUND = "found"  # the PACS has its studies; retrieving them (or a --find-only pull's outcome)
    RETRIEVED = "retrieved"  # every study it found was moved to the gateway
    NOT_FOUND = "not_found"
    FAILED = "failed"  # the query or a move failed; a new run of the same pull tries again
    FINAL = (RETRIEVED, NOT_FOUND, FAILED)


class PullRun(Base):
    """One list of requested items from one PACS. Running the same list again finds this row
    by ``run_key`` and resumes it; the requests themselves (accession numbers, patient IDs)
    stay in the coordinator's file and are never stored."""

    __tablename__ = "pull_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Keyed hash of the source and the ordered request list.
    run_key: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    source: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # accessions, patients, query
    items: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class PullItem(Base):
    """One requested item (a line of the list) and its outcome; counts and states only."""

    __tablename__ = "pull_items"
    __table_args__ = (UniqueConstraint("run_id", "line"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("pull_runs.id"), index=True)
    line: Mapped[int] = mapped_column(Integer)  # where the coordinator finds it in the list
    item_key: Mapped[str] = mapped_column(String(64))  # keyed hash of the request
    state: Mapped[str] = mapped_column(String(16), default=PullItemState.PENDING, index=True)
    studies: Mapped[int] = mapped_column(Integer, default=0)
    instances: Mapped[int] = mapped_column(Integer, default=0)  # completed C-MOVE sub-operations
    failed: Mapped[int] = mapped_column(Integer, default=0)  # failed sub-operations
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str | None] = mapped_column(String(128))  # from a fixed vocabulary
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class PullStudy(Base):
    """A study the PACS answered for an item, found by the keyed hash of its Study UID (the
    same digest as ``studies.study_key``, so it leads to the study the gateway received)."""

    __tablename__ = "pull_studies"
    __table_args__ = (UniqueConstraint("item_id", "study_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("pull_items.id"), index=True)
    study_key: Mapped[str] = mapped_column(String(64), index=True)
    retrieved: Mapped[bool] = mapped_column(default=False)
    completed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str | None] = mapped_column(String(16))  # the last C-MOVE status, "0xB000"
