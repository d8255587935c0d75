"""The worker: claim a job, run the pipeline over its instances, record what came of each.

Instances are committed a few at a time as they are de-identified (outputs in the outbox, rows
for their deliveries; see :mod:`gateway.queue.recording`), so a worker that dies loses at most
the few instances in hand; the job's lease then expires and another worker carries on with the
instances still queued. The job's states are the queue's
(:mod:`gateway.queue.jobs`), reading and writing instances is :mod:`gateway.pipeline.instance_io`'s,
and deliveries are egress's (:mod:`gateway.egress.deliveries`): what is left here is the loop.

Workers of three roles can share one queue. An ``all`` worker runs whole jobs. A ``pixels``
worker (the host with the GPU) runs only the instance stages, leaves each result beside the
spool (see :mod:`gateway.pipeline.intermediate`) and hands the job on; ``headers`` workers
(CPU hosts, no models loaded) take handed-on jobs and finish them.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from pydicom import Dataset, dcmread
from sqlalchemy import func, select

from gateway.audit import events as audit
from gateway.db import Database
from gateway.files import hashed_path, sha256_hex, write_durably
from gateway.logs import describe_error
from gateway.pipeline import intermediate, prepare
from gateway.pipeline.instance_io import check_output, encode, read_ahead, read_twice
from gateway.pipeline.outputs import (
    Entry,
    InstanceOutcome,
    forget_intermediate,
    record_batch,
    rule_count,
    still_queued,
)
from gateway.pipeline.pipeline import Cleaned, Pipeline, ProfileResult
from gateway.pipeline.stage import Quarantine, StageUnavailable, contained
from gateway.pixels.config import PixelsConfig
from gateway.queue.config import QueueConfig
from gateway.queue.jobs import JobLease, LeaseLost
from gateway.queue.polling import poll_until
from gateway.queue.recording import BatchRecorder
from gateway.queue.tables import (
    Instance,
    InstanceState,
    JobPhase,
    QuarantineEntry,
    Study,
    WorkerRole,
)
from gateway.rules.router import Decision, Dropped, Router
from gateway.storage_config import StorageConfig

log = logging.getLogger("gateway.worker")


@dataclass
class _Ahead:
    """An instance read (and prepared by the instance stages) together with its group."""

    original: Dataset
    working: Dataset
    prepared: dict[str, Any]


class Worker:
    """Runs jobs from the queue through ``pipeline``, as a worker of ``role``; ``router`` (the
    routing rules) decides for each instance whether it leaves, which profiles run and which
    destinations receive each profile's output."""

    def __init__(self, db: Database, pipeline: Pipeline, *, queue: QueueConfig, storage: StorageConfig,
                 pixels: PixelsConfig, router: Router, owner: str | None = None, role: str = WorkerRole.ALL):
        self.db = db
        self.pipeline = pipeline
        self.role = role
        self.owner = owner or f"worker@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.jobs = JobLease(db, queue, self.owner, role)
        self.poll_interval = queue.worker_poll_interval
        self.storage = storage
        self.pixels = pixels
        self.router = router
        self.on_recorded = None  # called once an instance's outputs and deliveries are committed

    @classmethod
    def from_config(cls, config, db: Database, pipeline: Pipeline, owner: str | None = None,
                    role: str = WorkerRole.ALL) -> Worker:
        """A worker with the sections of ``config`` (a :class:`gateway.config.GatewayConfig`) it uses."""
        return cls(db, pipeline, queue=config.queue, storage=config.storage, pixels=config.pixels,
                   router=Router.from_config(config), owner=owner, role=role)

    # -- the loop ----------------------------------------------------------------------------
    def run_once(self) -> bool:
        job_id = self.jobs.claim()
        if job_id is None:
            return False
        try:
            with self.jobs.heartbeat(job_id):
                self.process(job_id)
        except LeaseLost:
            log.warning("job %d was taken over by another worker", job_id)
        except Exception as exc:
            log.error("job %d failed: %s", job_id, describe_error(exc))
            self.jobs.fail_or_retry(job_id, f"{type(exc).__name__}")
        return True

    def run_forever(self, stop: threading.Event, wake: threading.Event | None = None) -> None:
        """Run jobs until ``stop``; when idle, wait ``queue.worker_poll_interval``, or less if
        ``wake`` is set (the scheduler of the same ``serve`` has just made a job)."""
        poll_until(stop, self.run_once, self.poll_interval, "worker", wake)

    def process(self, job_id: int) -> None:
        """Run one claimed job: this role's part of each queued instance, then the job's end."""
        with self.db.session() as session:
            queued = session.execute(
                select(Instance.id, Instance.spool_path, Instance.sha256, Instance.intermediate_path,
                       Instance.intermediate_context, Instance.calling_address, Instance.prepared_sha256,
                       Instance.prepared_path, Instance.prepared_context,
                       func.coalesce(Instance.calling_ae, Study.calling_ae).label("calling_ae"))
                .join(Study, Study.id == Instance.study_id)
                .where(Instance.job_id == job_id, Instance.state == InstanceState.QUEUED)
                .order_by(Instance.id)
            ).all()
        if self.role == WorkerRole.PIXELS:
            self._clean_pixels(job_id, [row for row in queued if prepare.needs_instance_stages(row)])
            return
        if self.role == WorkerRole.HEADERS and self.pixels.enabled and any(
            prepare.needs_instance_stages(row) for row in queued
        ):
            # Made before the pixel stage was switched on: its pixels were never looked at.
            self.jobs.hand_over(job_id, JobPhase.PIXELS)
            return
        actions: dict[str, Counter] = defaultdict(Counter)
        outcome = Counter()
        options: set[str] = set()

        def tally(result: InstanceOutcome | Future) -> None:
            result = result.result() if isinstance(result, Future) else result  # the recorder's error raised
            outcome[result.kind] += 1
            for stage, counts in result.actions.items():
                actions[stage].update(counts)
            options.update(result.options)

        # The next instances are de-identified while those before are written and recorded
        # (fsyncs, the commit): the waits for the disk overlap the work of the CPU.
        with BatchRecorder(partial(self._record_batch, job_id)) as recorder:
            pending: deque = deque()
            for row, ahead in self._read_in_groups(queued):
                pending.append(self._process_instance(job_id, row, ahead, recorder))
                while pending and (not isinstance(pending[0], Future) or pending[0].done()):
                    tally(pending.popleft())
            while pending:
                tally(pending.popleft())
        self.jobs.finish(job_id, outcome, actions, options)

    def _read_in_groups(self, rows: list) -> Iterator[tuple[Any, _Ahead | None]]:
        """Each row with its instance read ahead, in groups of ``pixels.batch_instances`` that
        the instance stages prepare together (the pixel stage detects their text at once).
        Rows a pixel worker or a preparer has already cleaned, and instances that fail to read,
        get None."""
        group = self.pixels.batch_instances if self.pipeline.instance_stages else 1
        for start in range(0, len(rows), group):
            chunk = rows[start:start + group]
            fresh = [prepare.needs_instance_stages(row) for row in chunk]
            read = read_ahead([row.spool_path for row, needs in zip(chunk, fresh, strict=True) if needs])
            pairs = [pair for pair in read if pair is not None]
            prepared = self.pipeline.prepare([working for _, working in pairs]) if len(read) > 1 else [{}] * len(pairs)
            prepared_of = {id(pair): slot for pair, slot in zip(pairs, prepared, strict=True)}
            reads = iter(read)
            for row, needs in zip(chunk, fresh, strict=True):
                pair = next(reads) if needs else None
                yield row, None if pair is None else _Ahead(*pair, prepared_of.get(id(pair), {}))

    # -- a pixel worker's part ------------------------------------------------------------------
    def _clean_pixels(self, job_id: int, rows: list) -> None:
        """The pixel worker's part of a job: instance stages, results beside the spool."""
        outcome = Counter()
        for row, ahead in self._read_in_groups(rows):
            outcome[self._clean_instance(job_id, row, ahead)] += 1
        self.jobs.hand_over(job_id, JobPhase.HEADERS, outcome)

    def _clean_instance(self, job_id: int, row, ahead: _Ahead | None) -> str:
        try:
            original, working, prepared = _read(row, ahead)
            self._decide(original, row)
            cleaned = self.pipeline.run_instance_stages(original, working, prepared)
            context = intermediate.context_to_json(cleaned.context)
            data = encode(cleaned.dataset)
        except FileNotFoundError:
            return "skipped"
        except Dropped as dropped:
            return self._drop(job_id, row, dropped.rule)
        except BaseException as exc:  # noqa: BLE001 - Quarantine and anything unexpected alike
            return self._keep_back(job_id, row, contained(exc))
        path = intermediate.path_for(self.storage, row.sha256)
        write_durably(path, data)
        with self.db.session() as session:
            self.jobs.renew(session, job_id)
            instance = session.get(Instance, row.id)
            if not still_queued(instance, job_id, row):
                path.unlink(missing_ok=True)
                return "skipped"  # a newer version arrived meanwhile
            instance.intermediate_path = str(path)
            instance.intermediate_context = context
        return "cleaned"

    # -- a whole instance -------------------------------------------------------------------------
    def _process_instance(self, job_id: int, row, ahead: _Ahead | None,
                          recorder: BatchRecorder) -> InstanceOutcome | Future:
        """De-identify one instance: run, then write and record on ``recorder`` (the future's
        outcome). The record checks that the instance was not replaced meanwhile."""
        try:
            decision, _original, results = self._run(row, ahead)
            outputs = [(result, self._outbox_path(result), encode(result.dataset)) for result in results]
        except FileNotFoundError:
            return InstanceOutcome("skipped")  # replaced by a newer version meanwhile
        except Dropped as dropped:
            return InstanceOutcome(self._drop(job_id, row, dropped.rule), actions=rule_count(dropped.rule))
        except StageUnavailable:
            raise  # not the instance's fault: the whole job is tried again later
        except BaseException as exc:  # noqa: BLE001 - Quarantine and anything unexpected alike
            return InstanceOutcome(self._keep_back(job_id, row, contained(exc)))
        # Not the instance's fault if writing or recording fails (a full disk): the job is tried again.
        written = [(result, path, str(result.dataset.SOPInstanceUID)) for result, path, _ in outputs]
        return recorder.submit((row, written, decision), [(path, data) for _, path, data in outputs])

    def _decide(self, original: Dataset, row) -> Decision:
        """The rules' decision on the instance as received; raises Dropped for a drop."""
        return self.router.decide(original, row.calling_ae, row.calling_address).or_raise()

    def _run(self, row, ahead: _Ahead | None) -> tuple[Decision, Dataset, list[ProfileResult]]:
        """The rules, then the pipeline over one instance for the profiles they chose, checked;
        an instance a pixel worker has cleaned goes through the profile stages only, from its
        intermediate file, and one prepared as it arrived from its preparation."""
        if row.intermediate_path is not None:
            if not Path(row.intermediate_path).exists():
                raise Quarantine("the pixel worker's intermediate file is missing")
            original = dcmread(row.spool_path)
            decision = self._decide(original, row)
            cleaned = Cleaned(dcmread(row.intermediate_path),
                              intermediate.context_from_json(row.intermediate_context, original))
            results = self.pipeline.run_profiles(original, cleaned, decision.profiles)
        elif prepare.ahead_of(row):
            original, cleaned = prepare.cleaned_ahead(row)
            decision = self._decide(original, row)
            results = self.pipeline.run_profiles(original, cleaned, decision.profiles)
        else:
            original, working, prepared = _read(row, ahead)
            decision = self._decide(original, row)
            results = self.pipeline.run(original, decision.profiles, working=working, prepared=prepared)
        for result in results:
            check_output(original, result)
        return decision, original, results

    def _outbox_path(self, result: ProfileResult) -> Path:
        """Where one profile's output goes in the outbox: named by the digest of its de-identified UID."""
        return hashed_path(self.storage.outbox / result.profile, sha256_hex(str(result.dataset.SOPInstanceUID).encode()))

    def _record_batch(self, job_id: int, entries: list[Entry]) -> list[InstanceOutcome]:
        """Several instances' outputs (already durable in the outbox) recorded in one transaction."""
        served: list[str | None] = []
        with self.db.session() as session:
            self.jobs.renew(session, job_id)
            outcomes = record_batch(session, job_id, entries, self.owner, served)
        _unlink(*served)
        if self.on_recorded is not None:
            self.on_recorded()
        return outcomes

    # -- keeping back ---------------------------------------------------------------------------
    def _drop(self, job_id: int, row, rule: str) -> str:
        """A rule dropped the instance: it is never forwarded, its original is deleted, and the
        rule's name is audited."""
        with self.db.session() as session:
            self.jobs.renew(session, job_id)
            instance = session.get(Instance, row.id)
            if not still_queued(instance, job_id, row):
                return "skipped"
            instance.state = InstanceState.DROPPED
            served, spooled = forget_intermediate(instance), instance.spool_path
            instance.spool_path = None
            audit.record(session, audit.DROPPED, study=session.get(Study, instance.study_id), actor=self.owner,
                         rule=rule, instance_id=instance.id)
        _unlink(*served, spooled)
        return "dropped"

    def _keep_back(self, job_id: int, row, exc: BaseException) -> str:
        """Quarantine an instance a stage refused or failed on: never forward what a stage
        could not finish."""
        if isinstance(exc, Quarantine):
            reason = exc.reason
        else:
            log.error("instance %d failed in the pipeline: %s", row.id, describe_error(exc))
            reason = f"internal error ({type(exc).__name__})"
        self._quarantine(job_id, row.id, row.sha256, "pipeline", reason)
        return "quarantined"

    def _quarantine(self, job_id: int, instance_id: int, sha: str, stage: str, reason: str) -> None:
        with self.db.session() as session:
            self.jobs.renew(session, job_id)
            instance = session.get(Instance, instance_id)
            if instance.sha256 != sha:
                return
            instance.state = InstanceState.QUARANTINED
            instance.error = reason
            served = forget_intermediate(instance)
            study = session.get(Study, instance.study_id)
            session.add(QuarantineEntry(stage=stage, reason=reason, path=instance.spool_path,
                                        instance_id=instance.id, study_id=study.id))
            audit.record(session, audit.QUARANTINED, study=study, actor=self.owner, stage=stage,
                         reason=reason, instance_id=instance.id)
        _unlink(*served)


def _read(row, ahead: _Ahead | None) -> tuple[Dataset, Dataset, dict[str, Any]]:
    """The instance read ahead, or read now (a reading error is met where errors are handled)."""
    if ahead is not None:
        return ahead.original, ahead.working, ahead.prepared
    return *read_twice(row.spool_path), {}


def _unlink(*paths: str | None) -> None:
    for path in paths:
        if path:
            Path(path).unlink(missing_ok=True)


def serve(config, device: str, role: str, secret: bytes, jobs_made, on_recorded, started,
          done: threading.Event) -> None:
    """The worker's process under ``serve`` (``queue.worker_own_process``; see
    :mod:`gateway.children`): its own database engine and pipeline, ready once the pipeline is
    built (``started``, so that a stage that cannot start stops start-up), woken by
    ``jobs_made`` (the scheduler made a job), calling ``on_recorded`` (the forwarder) after each
    batch of outputs, until ``done``."""
    from gateway.children import get_ready
    from gateway.logs import setup_logging
    from gateway.pipeline.build import build_pipeline

    setup_logging(config.logging)
    db = Database(config.database.url)
    try:
        worker = get_ready(started, lambda: Worker.from_config(
            config, db, build_pipeline(config, db, secret, device=device, role=role), role=role), "the worker")
        if worker is None:
            return
        worker.on_recorded = on_recorded.set
        worker.run_forever(done, jobs_made)
    finally:
        db.dispose()
