"""The worker: claims a job, de-identifies its instances, writes outputs and deliveries.

Each instance is committed on its own (outputs in the outbox, rows for its deliveries), so a
worker that dies loses at most the instance in hand; the job's lease then expires and another
worker carries on with the instances still queued.

Workers of three roles can share one queue. An ``all`` worker runs whole jobs. A ``pixels``
worker (the host with the GPU) runs only the instance stages, leaves each result beside the
spool (see :mod:`gateway.pipeline.intermediate`) and hands the job on; ``headers`` workers
(CPU hosts, no models loaded) take handed-on jobs and finish them.
"""

from __future__ import annotations

import io
import logging
import os
import socket
import threading
import uuid
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

from pydicom import Dataset, dcmread
from sqlalchemy import or_, select, update

from gateway.audit import events as audit
from gateway.config import GatewayConfig
from gateway.db import Database
from gateway.files import hashed_path, sha256_hex, write_durably
from gateway.logs import describe_error
from gateway.pipeline import intermediate
from gateway.pipeline.build import profile_by_destination
from gateway.pipeline.pipeline import Cleaned, Pipeline, ProfileResult
from gateway.deid.pseudonyms import PseudonymUnavailable
from gateway.pipeline.stage import Quarantine
from gateway.queue.tables import (
    Delivery,
    DeliveryState,
    Instance,
    InstanceState,
    Job,
    JobPhase,
    JobState,
    Output,
    QuarantineEntry,
    Study,
    StudyState,
    WorkerRole,
    utcnow,
)

log = logging.getLogger("gateway.worker")


class LeaseLost(Exception):
    """Another worker took the job over; stop without writing anything more."""


def read_twice(path: str | Path) -> tuple[Dataset, Dataset]:
    """The instance as received, and an independent copy of it for the stages to edit."""
    data = Path(path).read_bytes()
    return dcmread(io.BytesIO(data)), dcmread(io.BytesIO(data))


def _read_ahead(paths: list[str]) -> list[tuple[Dataset, Dataset] | None]:
    """``read_twice`` of each path, None where that fails (the instance's own turn reports it)."""
    out: list[tuple[Dataset, Dataset] | None] = []
    for path in paths:
        try:
            out.append(read_twice(path))
        except Exception:  # noqa: BLE001 - read again, and handled, in _process_instance
            out.append(None)
    return out


def encode(ds: Dataset) -> bytes:
    """The dataset in the DICOM file format, in its own transfer syntax."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def check_output(original: Dataset, result: ProfileResult) -> None:
    """Last line of defence before anything reaches the outbox."""
    ds = result.dataset
    if ds.get("PatientIdentityRemoved") != "YES":
        raise Quarantine("output lacks PatientIdentityRemoved = YES")
    if ds.file_meta.get("MediaStorageSOPInstanceUID") != ds.get("SOPInstanceUID"):
        raise Quarantine("output file meta does not match its SOP Instance UID")
    if "113110" not in result.declared_options and ds.get("SOPInstanceUID") == original.get(
        "SOPInstanceUID"
    ):
        raise Quarantine("output kept the original SOP Instance UID")


class Worker:
    def __init__(self, config: GatewayConfig, db: Database, pipeline: Pipeline, owner: str | None = None,
                 role: str = WorkerRole.ALL):
        if role not in WorkerRole.CHOICES:
            raise ValueError(f"unknown worker role {role!r}")
        self.config = config
        self.db = db
        self.pipeline = pipeline
        self.role = role
        self.owner = owner or f"worker@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.profiles_by_destination = profile_by_destination(config)
        self.lease = timedelta(seconds=config.queue.lease_seconds)

    # -- claiming --------------------------------------------------------------------------
    def claim(self) -> int | None:
        """Take the oldest pending job. Atomic: BEGIN IMMEDIATE on SQLite, SKIP LOCKED elsewhere."""
        with self.db.session() as session:
            query = select(Job).where(Job.state == JobState.PENDING).order_by(Job.id).limit(1)
            if self.role == WorkerRole.PIXELS:
                query = query.where(or_(Job.phase == JobPhase.PIXELS, Job.phase.is_(None)))
            elif self.role == WorkerRole.HEADERS:
                query = query.where(Job.phase == JobPhase.HEADERS)
            if not self.db.is_sqlite:
                query = query.with_for_update(skip_locked=True)
            job = session.scalars(query).first()
            if job is None:
                return None
            job.state = JobState.RUNNING
            job.attempts += 1
            job.lease_owner = self.owner
            job.lease_expires_at = utcnow() + self.lease
            session.get(Study, job.study_id).state = StudyState.PROCESSING
            return job.id

    def _renew(self, session, job_id: int) -> None:
        renewed = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.lease_owner == self.owner, Job.state == JobState.RUNNING)
            .values(lease_expires_at=utcnow() + self.lease)
        ).rowcount
        if not renewed:
            raise LeaseLost()

    # -- running ---------------------------------------------------------------------------
    def run_once(self) -> bool:
        job_id = self.claim()
        if job_id is None:
            return False
        try:
            self.process(job_id)
        except LeaseLost:
            log.warning("job %d was taken over by another worker", job_id)
        except Exception as exc:
            log.error("job %d failed: %s", job_id, describe_error(exc))
            self._fail_or_retry(job_id, f"{type(exc).__name__}")
        return True

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                busy = self.run_once()
            except Exception as exc:  # database briefly unavailable, and the like
                log.error("worker loop error: %s", type(exc).__name__)
                busy = False
            if not busy:
                stop.wait(self.config.queue.worker_poll_interval)

    def process(self, job_id: int) -> None:
        with self.db.session() as session:
            queued = session.execute(
                select(Instance.id, Instance.spool_path, Instance.sha256, Instance.intermediate_path,
                       Instance.intermediate_context)
                .where(Instance.job_id == job_id, Instance.state == InstanceState.QUEUED)
                .order_by(Instance.id)
            ).all()
        if self.role == WorkerRole.PIXELS:
            self._clean_pixels(job_id, [row for row in queued if row.intermediate_path is None])
            return
        if self.role == WorkerRole.HEADERS and self.config.pixels.enabled and any(
            row.intermediate_path is None for row in queued
        ):
            # Made before the pixel stage was switched on: its pixels were never looked at.
            self._hand_over(job_id, JobPhase.PIXELS)
            return
        actions: dict[str, Counter] = defaultdict(Counter)
        outcome = Counter()
        options: set[str] = set()
        for chunk, read in self._read_in_groups(queued):
            for row, pair in zip(chunk, read, strict=True):
                result = self._process_instance(job_id, row, pair)
                outcome[result.kind] += 1
                for stage, counts in result.actions.items():
                    actions[stage].update(counts)
                options |= result.options
        self._finish(job_id, outcome, actions, options)

    def _read_in_groups(self, rows: list):
        """Rows in groups of ``pixels.batch_instances``, each with the instances read ahead
        that still need the instance stages, which then detect text in the group at once."""
        group = self.config.pixels.batch_instances if self.pipeline.instance_stages else 1
        for start in range(0, len(rows), group):
            chunk = rows[start:start + group]
            fresh = [row.intermediate_path is None for row in chunk]
            read = _read_ahead([row.spool_path for row in chunk if row.intermediate_path is None])
            if len(read) > 1:
                self.pipeline.prefetch([pair[1] for pair in read if pair is not None])
            pairs = iter(read)
            yield chunk, [next(pairs) if needs else None for needs in fresh]

    def _clean_pixels(self, job_id: int, rows: list) -> None:
        """The pixel worker's part of a job: instance stages, results beside the spool."""
        outcome = Counter()
        for chunk, read in self._read_in_groups(rows):
            for row, pair in zip(chunk, read, strict=True):
                outcome[self._clean_instance(job_id, row, pair)] += 1
        self._hand_over(job_id, JobPhase.HEADERS, outcome)

    def _clean_instance(self, job_id: int, row, read: tuple[Dataset, Dataset] | None) -> str:
        try:
            original, working = read if read is not None else read_twice(row.spool_path)
            cleaned = self.pipeline.run_instance_stages(original, working)
            context = intermediate.context_to_json(cleaned.context)
            data = encode(cleaned.dataset)
        except FileNotFoundError:
            return "skipped"
        except Exception as exc:  # noqa: BLE001 - Quarantine and anything unexpected alike
            return self._keep_back(job_id, row, exc)
        path = intermediate.path_for(self.config.storage, row.sha256)
        write_durably(path, data)
        with self.db.session() as session:
            self._renew(session, job_id)
            instance = session.get(Instance, row.id)
            if instance.job_id != job_id or instance.sha256 != row.sha256 or instance.state != InstanceState.QUEUED:
                path.unlink(missing_ok=True)
                return "skipped"  # a newer version arrived meanwhile
            instance.intermediate_path = str(path)
            instance.intermediate_context = context
        return "cleaned"

    def _process_instance(self, job_id: int, row, read: tuple[Dataset, Dataset] | None = None) -> _InstanceOutcome:
        """De-identify one instance; the commit at the end checks it was not replaced meanwhile.

        ``read`` is the instance already read by ``read_twice`` (None: read it here, so that any
        error in reading is met where it is handled). An instance a pixel worker has cleaned
        goes through the profile stages only, from its intermediate file."""
        try:
            if row.intermediate_path is not None:
                if not Path(row.intermediate_path).exists():
                    raise Quarantine("the pixel worker's intermediate file is missing")
                original = dcmread(row.spool_path)
                cleaned = Cleaned(dcmread(row.intermediate_path),
                                  intermediate.context_from_json(row.intermediate_context, original))
                results = self.pipeline.run_profiles(original, cleaned)
            else:
                original, working = read if read is not None else read_twice(row.spool_path)
                results = self.pipeline.run(original, working=working)
            for result in results:
                check_output(original, result)
        except FileNotFoundError:
            return _InstanceOutcome("skipped")  # replaced by a newer version meanwhile
        except PseudonymUnavailable:
            raise  # the database, not the instance, is at fault: the job is tried again later
        except Exception as exc:  # noqa: BLE001 - Quarantine and anything unexpected alike
            return _InstanceOutcome(self._keep_back(job_id, row, exc))

        written = []
        for result in results:
            data = encode(result.dataset)
            anon_uid = str(result.dataset.SOPInstanceUID)
            path = hashed_path(self.config.storage.outbox / result.profile, sha256_hex(anon_uid.encode()))
            write_durably(path, data)
            written.append((result, path, anon_uid))

        with self.db.session() as session:
            self._renew(session, job_id)
            instance = session.get(Instance, row.id)
            if instance.job_id != job_id or instance.sha256 != row.sha256 or instance.state != InstanceState.QUEUED:
                return _InstanceOutcome("skipped")  # a newer version arrived meanwhile
            study = session.get(Study, instance.study_id)
            for result, path, anon_uid in written:
                self._record_output(session, instance, study, result, path, anon_uid)
            first = written[0][0].dataset
            instance.anon_uid = written[0][2]
            instance.state = InstanceState.PROCESSED
            served = _forget_intermediate(instance)
            if study.anon_uid is None:
                study.anon_uid = str(first.StudyInstanceUID)
            for report in written[0][0].reports:
                if report.details:
                    audit.record(session, f"{report.stage}_detail", study=study, actor=self.owner,
                                 instance=instance.anon_uid, counts=report.counts, **report.details)
        _unlink(served)
        reports = written[0][0].reports
        return _InstanceOutcome(
            "processed",
            actions={r.stage: Counter(r.counts) for r in reports},
            options=set(written[0][0].declared_options),
        )

    def _keep_back(self, job_id: int, row, exc: Exception) -> str:
        """Quarantine an instance a stage refused or failed on: never forward what a stage
        could not finish."""
        if isinstance(exc, Quarantine):
            reason = exc.reason
        else:
            log.error("instance %d failed in the pipeline: %s", row.id, describe_error(exc))
            reason = f"internal error ({type(exc).__name__})"
        self._quarantine(job_id, row.id, row.sha256, "pipeline", reason)
        return "quarantined"

    def _record_output(self, session, instance, study, result, path, anon_uid) -> None:
        output = session.scalars(
            select(Output).where(Output.instance_id == instance.id, Output.profile == result.profile)
        ).one_or_none()
        ds = result.dataset
        if output is None:
            output = Output(instance_id=instance.id, profile=result.profile)
            session.add(output)
        output.path = str(path)
        output.anon_uid = anon_uid
        output.sop_class_uid = str(ds.SOPClassUID)
        output.transfer_syntax_uid = str(ds.file_meta.TransferSyntaxUID)
        session.flush()
        for destination, profile in self.profiles_by_destination.items():
            if profile != result.profile:
                continue
            delivery = session.scalars(
                select(Delivery).where(Delivery.output_id == output.id, Delivery.destination == destination)
            ).one_or_none()
            if delivery is None:
                session.add(Delivery(output_id=output.id, study_id=study.id, destination=destination))
            else:  # a corrected version of an instance already sent: send it again
                delivery.state = DeliveryState.PENDING
                delivery.attempts = 0
                delivery.next_attempt_at = utcnow()
                delivery.delivered_at = None

    def _quarantine(self, job_id: int, instance_id: int, sha: str, stage: str, reason: str) -> None:
        with self.db.session() as session:
            self._renew(session, job_id)
            instance = session.get(Instance, instance_id)
            if instance.sha256 != sha:
                return
            instance.state = InstanceState.QUARANTINED
            instance.error = reason
            served = _forget_intermediate(instance)
            study = session.get(Study, instance.study_id)
            session.add(QuarantineEntry(stage=stage, reason=reason, path=instance.spool_path,
                                        instance_id=instance.id, study_id=study.id))
            audit.record(session, audit.QUARANTINED, study=study, actor=self.owner, stage=stage,
                         reason=reason, instance_id=instance.id)
        _unlink(served)

    def _finish(self, job_id: int, outcome: Counter, actions: dict[str, Counter], options: set[str]) -> None:
        with self.db.session() as session:
            self._renew(session, job_id)
            job = session.get(Job, job_id)
            job.state = JobState.DONE
            job.finished_at = utcnow()
            job.lease_owner = None
            job.lease_expires_at = None
            study = session.get(Study, job.study_id)
            pending = session.scalars(
                select(Delivery.id).where(
                    Delivery.study_id == study.id,
                    Delivery.state.in_([DeliveryState.PENDING, DeliveryState.SENDING]),
                ).limit(1)
            ).first()
            study.state = StudyState.FORWARDING if pending else StudyState.DONE
            audit.record(
                session, audit.PROCESSED, study=study, actor=self.owner, job=job_id,
                instances=outcome.get("processed", 0), quarantined=outcome.get("quarantined", 0),
                actions={stage: dict(counts) for stage, counts in actions.items()},
                options=sorted(options),
            )

    def _hand_over(self, job_id: int, phase: str, outcome: Counter | None = None) -> None:
        """Put the job back in the queue for workers of another role."""
        with self.db.session() as session:
            self._renew(session, job_id)
            job = session.get(Job, job_id)
            job.phase = phase
            job.state = JobState.PENDING
            job.attempts = 0  # the next phase gets attempts of its own
            job.lease_owner = None
            job.lease_expires_at = None
            if outcome is not None:
                audit.record(session, audit.PIXELS_CLEANED, study=session.get(Study, job.study_id),
                             actor=self.owner, job=job_id, instances=outcome.get("cleaned", 0),
                             quarantined=outcome.get("quarantined", 0))

    def _fail_or_retry(self, job_id: int, error: str) -> None:
        with self.db.session() as session:
            job = session.get(Job, job_id)
            if job.lease_owner != self.owner:
                return
            study = session.get(Study, job.study_id)
            job.error = error
            job.lease_owner = None
            job.lease_expires_at = None
            if job.attempts >= self.config.queue.max_job_attempts:
                job.state = JobState.FAILED
                job.finished_at = utcnow()
                study.state = StudyState.FAILED
                audit.record(session, audit.FAILED, study=study, actor=self.owner, job=job_id,
                             reason=f"processing failed ({error})", attempts=job.attempts)
            else:
                job.state = JobState.PENDING


def _forget_intermediate(instance: Instance) -> str | None:
    """The intermediate has served once the instance is processed or kept back; returns its
    file, which the caller deletes after the commit (before it, the row still needs it)."""
    path = instance.intermediate_path
    instance.intermediate_path = None
    instance.intermediate_context = None
    return path


def _unlink(path: str | None) -> None:
    if path:
        Path(path).unlink(missing_ok=True)


class _InstanceOutcome:
    def __init__(self, kind: str, actions: dict[str, Counter] | None = None, options: set[str] | None = None):
        self.kind = kind
        self.actions = actions or {}
        self.options = options or set()
