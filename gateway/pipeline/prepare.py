"""The pixel stage run on each instance as it arrives, while its study is still arriving.

The instance stages (the pixel stage) need nothing from the rest of the study, so they need not
wait for the study to be quiet: a preparer takes a few received instances at a time, runs those
stages, and keeps what came of it in the instance's row. Only the header stage, which does need
the whole study (one set of pseudonyms and UIDs), waits for ``queue.stable_after``; its job then
finds each instance prepared (see :func:`cleaned_ahead`), and the scheduler makes no job for a
study while one of its received instances is still unprepared
(:func:`gateway.queue.stability.queue_stable_studies`).

What a preparation keeps, for the version of the instance whose SHA-256 it names:
- the options the stages declared and their reports (JSON, counts and coordinates only, as in
  :mod:`gateway.pipeline.intermediate`);
- the cleaned file beside the spool when the stages changed the instance, or nothing at all when
  they left it as received (no text: pixel data unchanged, and the spool file serves, byte for
  byte);
- or, when the stages refused or failed on it (a quarantine, a rule's drop, a crash), no context:
  the job then runs the stages itself, in the instance's own turn, where quarantines, drops and
  their audit are handled as they always were. A preparer never quarantines nor forwards.

Nothing is lost if a preparer dies: the instance stays received, the preparer's lease on it
(kept alive by a heartbeat) runs out, and another preparer takes it; after
``queue.max_job_attempts`` such attempts it is left to the job. Preparers say they are alive
(``preparers``, :class:`~gateway.queue.tables.PreparerSeen`): with none seen for a lease, the
scheduler stops waiting for preparations and jobs run the stages themselves. Preparers run as processes of
their own (:func:`serve`), one per core by default, each with its own model sessions.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from pydicom import Dataset, dcmread
from sqlalchemy import delete, func, or_, select, update

from gateway.audit import events as audit
from gateway.db import Database
from gateway.files import hashed_path, write_durably
from gateway.pipeline import intermediate
from gateway.pipeline.instance_io import encode, read_ahead, read_twice
from gateway.pipeline.pipeline import Cleaned, Pipeline
from gateway.pipeline.stage import Quarantine, contained
from gateway.queue.config import QueueConfig
from gateway.queue.heartbeat import Heartbeat
from gateway.queue.polling import poll_until
from gateway.queue.tables import Instance, InstanceState, PreparerSeen, Study, utcnow
from gateway.rules.router import Router
from gateway.storage_config import StorageConfig

log = logging.getLogger("gateway.prepare")


# -- what the study's job reads ----------------------------------------------------------------
def ahead_of(row) -> bool:
    """Whether ``row`` (an instance row, or a query row with its columns) was prepared, for the
    version it holds now."""
    return row.prepared_sha256 == row.sha256 and row.prepared_context is not None


def needs_instance_stages(row) -> bool:
    """Whether the job must run the instance stages itself: neither a pixel worker's
    intermediate nor a preparation stands in for them."""
    return row.intermediate_path is None and not ahead_of(row)


def cleaned_ahead(row) -> tuple[Dataset, Cleaned]:
    """The instance as received and what the instance stages made of it, from its preparation.

    Raises FileNotFoundError when the spool file is gone (a newer version replaced it), and
    Quarantine when the prepared file is: never forward what cannot be shown clean."""
    original, working = read_twice(row.spool_path)
    if row.prepared_path is not None:
        if not Path(row.prepared_path).exists():
            raise Quarantine("the prepared pixel data is missing")
        working = dcmread(row.prepared_path)
    return original, Cleaned(working, intermediate.context_from_json(row.prepared_context, original))


def forget(instance: Instance) -> str | None:
    """The preparation has served (the instance is processed, or kept back); returns its file,
    for the caller to delete after the commit."""
    path = instance.prepared_path
    instance.prepared_sha256 = instance.prepared_path = instance.prepared_context = None
    return path


def _pending():
    """Received instances with no preparation for the version they hold now."""
    return (Instance.state == InstanceState.RECEIVED) & or_(
        Instance.prepared_sha256.is_(None), Instance.prepared_sha256 != Instance.sha256)


# -- the preparer ------------------------------------------------------------------------------
#: A preparer says it is alive at most this often, or four times a lease if that is shorter: the
#: scheduler looks back a whole lease (``queue.lease_seconds``), and saying it at every claim
#: cost a statement for every few instances.
SEEN_EVERY = timedelta(seconds=5)


@dataclass(frozen=True)
class _Claimed:
    id: int
    study_id: int
    sha256: str
    spool_path: str
    calling_ae: str | None
    calling_address: str | None


class Preparer:
    """Claims received instances a few at a time and prepares them with ``pipeline``'s
    instance stages; ``router`` (the routing rules) spares the work on instances they drop."""

    def __init__(self, db: Database, pipeline: Pipeline, *, queue: QueueConfig, storage: StorageConfig,
                 router: Router, group: int = 8, owner: str | None = None):
        self.db = db
        self.pipeline = pipeline
        self.storage = storage
        self.router = router
        self.group = group
        self.owner = owner or f"preparer@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease = timedelta(seconds=queue.lease_seconds)
        self.max_attempts = queue.max_job_attempts
        self.poll_interval = queue.worker_poll_interval
        self._seen = None  # when this preparer last said it was alive

    def claim(self) -> list[_Claimed]:
        """Up to ``group`` instances no live preparer holds; one that has worn out its attempts
        is left to the job instead (its preparation says "not prepared")."""
        now = utcnow()
        query = (select(Instance, func.coalesce(Instance.calling_ae, Study.calling_ae))
                 .join(Study, Study.id == Instance.study_id)
                 .where(_pending(), or_(Instance.prepare_expires_at.is_(None), Instance.prepare_expires_at < now))
                 .order_by(Instance.id).limit(self.group))
        if not self.db.is_sqlite:
            query = query.with_for_update(skip_locked=True, of=Instance)
        claimed = []
        with self.db.session() as session:
            self._say_alive(session, now)
            for instance, calling_ae in session.execute(query).all():
                if (instance.prepare_attempts or 0) >= self.max_attempts:
                    _settle(instance, None, None)
                    continue
                instance.prepare_attempts = (instance.prepare_attempts or 0) + 1
                instance.prepare_owner, instance.prepare_expires_at = self.owner, now + self.lease
                claimed.append(_Claimed(instance.id, instance.study_id, instance.sha256, instance.spool_path,
                                        calling_ae, instance.calling_address))
        return claimed

    def _say_alive(self, session, now) -> None:
        """Tell the scheduler this preparer is alive (``preparers``), at most every few seconds:
        it looks back a whole lease."""
        if self._seen is None or now - self._seen >= min(SEEN_EVERY, self.lease / 4):
            session.merge(PreparerSeen(owner=self.owner, seen_at=now))
            self._seen = now

    def run_once(self) -> bool:
        claimed = self.claim()
        if not claimed:
            return False
        with self._heartbeat([row.id for row in claimed]):
            results = self._prepare(claimed)
        self._record(claimed, results)
        return True

    def run_forever(self, stop: threading.Event, wake=None) -> None:
        """Prepare until ``stop``; then say so, so that jobs stop waiting for this preparer.
        When idle, wait ``queue.worker_poll_interval``, or less if ``wake`` is set (a
        :class:`gateway.children.Wakeup`): the receiver of the same ``serve`` has just recorded
        instances."""
        poll_until(stop, self.run_once, self.poll_interval, "preparer", wake)
        try:
            with self.db.session() as session:
                session.execute(delete(PreparerSeen).where(PreparerSeen.owner == self.owner))
        except Exception as exc:  # noqa: BLE001 - it is forgotten after a lease anyway
            log.warning("preparer could not sign off: %s", type(exc).__name__)

    def _prepare(self, claimed: list[_Claimed]) -> list[tuple[str, Path | None] | None]:
        """For each instance: its context as JSON and its cleaned file (None: unchanged), or None
        where the job must run the stages itself."""
        read = read_ahead([row.spool_path for row in claimed])
        pairs = [pair for pair in read if pair is not None]
        prepared = self.pipeline.prepare([working for _, working in pairs]) if len(pairs) > 1 else [{}] * len(pairs)
        slots = iter(prepared)
        results = []
        for row, pair in zip(claimed, read, strict=True):
            results.append(None if pair is None else self._prepare_one(row, *pair, next(slots)))
        return results

    def _prepare_one(self, row: _Claimed, original: Dataset, working: Dataset,
                     prepared: dict) -> tuple[str, Path | None] | None:
        try:
            self.router.decide(original, row.calling_ae, row.calling_address).or_raise()
            cleaned = self.pipeline.run_instance_stages(original, working, prepared)
            context = intermediate.context_to_json(cleaned.context)
            if cleaned.dataset == original:
                return context, None  # pixel data unchanged: the spool file serves as it is
            data = encode(cleaned.dataset)
        except BaseException as exc:  # noqa: BLE001 - the job meets it again, where it is handled
            contained(exc)
            return None
        path = hashed_path(self.storage.intermediate / "ahead", row.sha256)
        write_durably(path, data)
        return context, path

    def _record(self, claimed: list[_Claimed], results: list) -> None:
        """Every preparation of the group in one transaction; one whose instance was replaced,
        taken by a job or by another preparer meanwhile is dropped. The group's rows are read
        with one query: read one by one, recording took a sixth of the preparers' time in
        ``bench/chain.py`` with the pixel stage on."""
        stale: list[Path | str] = []
        cleaned: Counter = Counter()
        with self.db.session() as session:
            ids = [row.id for row in claimed]
            instances = {i.id: i for i in session.scalars(select(Instance).where(Instance.id.in_(ids)))}
            for row, result in zip(claimed, results, strict=True):
                instance = instances[row.id]
                context, path = result if result is not None else (None, None)
                if (instance.sha256 != row.sha256 or instance.state != InstanceState.RECEIVED
                        or instance.prepare_owner != self.owner):
                    stale.append(path)
                    if instance.prepare_owner == self.owner:  # a newer version: free to prepare now
                        instance.prepare_owner = instance.prepare_expires_at = None
                    continue
                stale.append(_settle(instance, context, path))
                if context is not None:
                    cleaned[row.study_id] += 1
            for study_id, count in cleaned.items():
                audit.record(session, audit.PIXELS_CLEANED, study=session.get(Study, study_id), actor=self.owner,
                             instances=count, ahead=True)
        for path in stale:
            if path:
                Path(path).unlink(missing_ok=True)

    def _heartbeat(self, ids: list[int]) -> Heartbeat:
        """Keeps the claimed instances' lease alive while they are being prepared."""

        def beat() -> bool:
            with self.db.session() as session:
                session.merge(PreparerSeen(owner=self.owner, seen_at=utcnow()))
                held = session.execute(
                    update(Instance).where(Instance.id.in_(ids), Instance.prepare_owner == self.owner)
                    .values(prepare_expires_at=utcnow() + self.lease)
                ).rowcount
            return held > 0

        return Heartbeat(beat, self.lease.total_seconds() / 3, name="prepare-lease")


def _settle(instance: Instance, context: str | None, path: Path | None) -> str | None:
    """Record a preparation (or "not prepared", with no context) for the instance's current
    version and release it; returns a superseded prepared file to delete."""
    old = instance.prepared_path if instance.prepared_path != (str(path) if path else None) else None
    instance.prepared_sha256 = instance.sha256
    instance.prepared_context = context
    instance.prepared_path = str(path) if path else None
    instance.prepare_owner = instance.prepare_expires_at = None
    instance.prepare_attempts = 0
    return old


# -- preparer processes ------------------------------------------------------------------------
def processes(device: str, wanted: int) -> int:
    """How many preparer processes: ``wanted``, else one per core on a CPU, one for a GPU."""
    if wanted:
        return wanted
    return 1 if device == "cuda" else max(1, len(os.sched_getaffinity(0)))


def serve(config, device: str, arrivals, done: threading.Event) -> None:
    """A preparer process's life (the target of a spawned process, see :mod:`gateway.children`):
    its own database engine and model sessions, until ``done`` (told to stop, or orphaned);
    woken by ``arrivals`` (a :class:`gateway.children.Wakeup` the receiver calls)."""
    from gateway.logs import setup_logging
    from gateway.pipeline.build import build_pipeline
    from gateway.queue.tables import WorkerRole

    setup_logging(config.logging)
    db = Database(config.database.url)
    pipeline = build_pipeline(config, db, b"", device=device, role=WorkerRole.PIXELS)
    preparer = Preparer(db, pipeline, queue=config.queue, storage=config.storage,
                        router=Router.from_config(config), group=config.pixels.batch_instances)
    try:
        preparer.run_forever(done, arrivals)
    finally:
        db.dispose()

