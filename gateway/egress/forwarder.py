"""Delivers outputs to destinations, with exponential backoff, and closes finished studies.

A delivery is marked sent as soon as its C-STORE response arrives: the results are recorded by
a thread of their own, those that arrived together in one transaction, while the next instances
are sent. A crash resends at most the instances in flight and the few whose answers were not yet
recorded (the archive then stores the same SOP Instance UID again).

Every destination's TLS settings and credentials are tried once when the forwarder is made, so
a missing or world-readable key stops start-up instead of failing each delivery. A failed TLS
handshake with an archive is a security event: it is audited, and the delivery retried.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import func, select, union_all, update

from gateway.audit import events as audit
from gateway.db import Database
from gateway.egress import scu, stow
from gateway.egress.config import Destination, EgressConfig
from gateway.queue.recording import BatchRecorder
from gateway.queue.heartbeat import Heartbeat
from gateway.queue.polling import poll_until
from gateway.queue.tables import (
    Delivery,
    DeliveryState,
    Job,
    JobState,
    Output,
    Study,
    StudyState,
    utcnow,
)

log = logging.getLogger("gateway.egress")


def backoff_seconds(egress: EgressConfig, attempts: int) -> float:
    return min(egress.backoff_max, egress.backoff_initial * 2 ** max(attempts - 1, 0))


def _lease(destination) -> timedelta:
    """How long a claimed delivery is the claimer's: its network timeout several times over."""
    return timedelta(seconds=destination.timeout * 4 + 60)


class Forwarder:
    """Sends due deliveries as ``calling_ae`` (the gateway's own AE title)."""

    def __init__(self, egress: EgressConfig, db: Database, calling_ae: str, owner: str | None = None):
        self.egress = egress
        self.db = db
        self.calling_ae = calling_ae
        self.owner = owner or f"forwarder@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.destinations = {d.name: d for d in egress.destinations}
        self.stow = {d.name: stow.StowSender(d) for d in egress.destinations if d.protocol == "stow-rs"}
        for destination in egress.destinations:
            if destination.protocol == "dimse":
                scu.tls_args(destination)  # ConfigError: stops start-up

    def claim(self) -> tuple[str, list[scu.Item]] | None:
        """Take a batch of due deliveries for one destination."""
        now = utcnow()
        due = Delivery.id.in_(_due_ids(now, list(self.destinations)))
        with self.db.session() as session:
            first = session.scalars(
                select(Delivery).where(due).order_by(Delivery.next_attempt_at, Delivery.id).limit(1)
            ).first()
            if first is None:
                return None
            destination = self.destinations[first.destination]
            query = (
                select(Delivery, Output)
                .join(Output, Output.id == Delivery.output_id)
                .where(due, Delivery.destination == destination.name)
                .order_by(Delivery.id)
                .limit(self.egress.batch_size)
            )
            if not self.db.is_sqlite:
                query = query.with_for_update(skip_locked=True, of=Delivery)
            lease = now + _lease(destination)
            items = []
            for delivery, output in session.execute(query).all():
                delivery.state = DeliveryState.SENDING
                delivery.lease_owner = self.owner
                delivery.lease_expires_at = lease
                items.append(scu.Item(delivery.id, output.path, output.sop_class_uid, output.transfer_syntax_uid))
            return destination.name, items

    def run_once(self) -> int:
        claimed = self.claim()
        if claimed is None:
            return 0
        name, items = claimed
        destination = self.destinations[name]
        with _Answers(self._record_batch) as answers:
            with self._heartbeat(destination, [item.delivery_id for item in items]):
                self._send(destination, items, answers.on_result)
        answers.report(name)
        self.close_finished_studies()
        return len(items)

    def _send(self, destination: Destination, items: list[scu.Item], on_result) -> None:
        """Send by the destination's protocol, over up to ``destination.associations`` C-STORE
        associations at once; once a TLS handshake has failed, the batch's associations not yet
        opened are not tried (nor audited): they wait for the next attempt."""
        audit_failure = self._tls_failure_audit(destination)
        if destination.protocol == "stow-rs":
            self.stow[destination.name].send(items, on_result, audit_failure)
            return
        failed: list[str] = []
        lock = threading.Lock()

        def on_tls_failure(reason: str) -> None:
            with lock:
                first = not failed
                failed.append(reason)
            if first:
                audit_failure(reason)

        def send_batch(batch: list[scu.Item]) -> None:
            if failed:
                for item in batch:
                    on_result(item, False, "TLS handshake failed")
            else:
                scu.send(destination, self.calling_ae, batch, on_result, on_tls_failure)

        batches = [batch for share in _shares(items, destination.associations)
                   for batch in scu.split_for_association(share)]
        if len(batches) == 1:
            send_batch(batches[0])
            return
        with ThreadPoolExecutor(max_workers=destination.associations, thread_name_prefix="c-store") as pool:
            list(pool.map(send_batch, batches))

    def _tls_failure_audit(self, destination: Destination):
        """A callback auditing a failed TLS handshake with ``destination``: an archive whose
        certificate is not trusted may be an impostor, and the site should hear of it."""

        def record(reason: str) -> None:
            log.warning("TLS handshake with %s failed: %s", destination.name, reason)
            with self.db.session() as session:
                audit.record(session, audit.TLS_FAILURE, actor=self.owner, destination=destination.name,
                             direction="egress", reason=reason)

        return record

    def _heartbeat(self, destination, delivery_ids: list[int]) -> Heartbeat:
        """Keeps the claimed deliveries' lease alive while the batch is being sent: a slow
        archive must not make another forwarder send them a second time."""
        length = _lease(destination)

        def beat() -> bool:
            with self.db.session() as session:
                held = session.execute(
                    update(Delivery)
                    .where(Delivery.id.in_(delivery_ids), Delivery.lease_owner == self.owner,
                           Delivery.state == DeliveryState.SENDING)
                    .values(lease_expires_at=utcnow() + length)
                ).rowcount
            return held > 0

        return Heartbeat(beat, length.total_seconds() / 3, name="delivery-lease")

    def _record_batch(self, results: list[tuple[int, bool, str]]) -> list[None]:
        """The archive's answers for several deliveries, in one transaction: the accepted ones
        with one statement per status (nearly always one), the others one by one. Answers come
        a few at a time, so what each transaction costs is what the forwarder costs."""
        accepted: dict[str, list[int]] = {}
        refused: list[tuple[int, str]] = []
        for delivery_id, ok, status in results:
            if ok:
                accepted.setdefault(status, []).append(delivery_id)
            else:
                refused.append((delivery_id, status))
        with self.db.session() as session:
            for status, ids in accepted.items():
                session.execute(
                    update(Delivery).where(Delivery.id.in_(ids), Delivery.lease_owner == self.owner)
                    .values(state=DeliveryState.SENT, delivered_at=utcnow(), last_status=status,
                            lease_owner=None, lease_expires_at=None)
                    .execution_options(synchronize_session=False)
                )
            if refused:
                ids = [delivery_id for delivery_id, _ in refused]
                deliveries = {d.id: d for d in session.scalars(select(Delivery).where(Delivery.id.in_(ids)))}
                for delivery_id, status in refused:
                    self._record_refusal(session, deliveries[delivery_id], status)
        return [None] * len(results)

    def _record_refusal(self, session, delivery: Delivery, status: str) -> None:
        """Not delivered: tried again after a backoff, or failed after ``egress.max_attempts``."""
        if delivery.lease_owner != self.owner:
            return
        delivery.lease_owner = None
        delivery.lease_expires_at = None
        delivery.last_status = status
        delivery.attempts += 1
        delivery.last_error = status
        if delivery.attempts >= self.egress.max_attempts:
            delivery.state = DeliveryState.FAILED
        else:
            delivery.state = DeliveryState.PENDING
            delivery.next_attempt_at = utcnow() + timedelta(
                seconds=backoff_seconds(self.egress, delivery.attempts)
            )
            if delivery.attempts == 1 or delivery.attempts % 4 == 0:
                audit.record(session, audit.DELIVERY_RETRY, study=session.get(Study, delivery.study_id),
                             actor=self.owner, destination=delivery.destination,
                             attempts=delivery.attempts, status=status)

    def close_finished_studies(self) -> None:
        """Mark studies done or failed once none of their deliveries is still under way."""
        with self.db.session() as session:
            studies = session.scalars(
                select(Study).where(Study.state == StudyState.FORWARDING)
            ).all()
            for study in studies:
                counts = dict(
                    session.execute(
                        select(Delivery.state, func.count()).where(Delivery.study_id == study.id)
                        .group_by(Delivery.state)
                    ).all()
                )
                if counts.get(DeliveryState.PENDING) or counts.get(DeliveryState.SENDING):
                    continue
                busy_job = session.scalars(
                    select(Job.id).where(Job.study_id == study.id,
                                         Job.state.in_([JobState.PENDING, JobState.RUNNING]))
                ).first()
                if busy_job:
                    continue
                per_destination = dict(
                    session.execute(
                        select(Delivery.destination, func.count()).where(
                            Delivery.study_id == study.id, Delivery.state == DeliveryState.SENT
                        ).group_by(Delivery.destination)
                    ).all()
                )
                if counts.get(DeliveryState.FAILED):
                    study.state = StudyState.FAILED
                    audit.record(session, audit.FAILED, study=study, actor=self.owner,
                                 reason="delivery attempts exhausted",
                                 failed=counts[DeliveryState.FAILED], sent=per_destination)
                else:
                    study.state = StudyState.DONE
                    audit.record(session, audit.FORWARDED, study=study, actor=self.owner,
                                 sent=per_destination)

    def run_forever(self, stop: threading.Event, wake: threading.Event | None = None) -> None:
        """Send until ``stop``; when idle, wait ``egress.poll_interval``, or less if ``wake`` is
        set (the worker of the same ``serve`` has just recorded outputs)."""
        poll_until(stop, self.run_once, self.egress.poll_interval, "forwarder", wake)


def serve(config, wake, done: threading.Event) -> None:
    """The forwarder's process under ``serve`` (``egress.own_process``; see
    :mod:`gateway.children`): its own database engine, woken by ``wake``, until ``done``."""
    from gateway.logs import setup_logging

    setup_logging(config.logging)
    db = Database(config.database.url)
    try:
        Forwarder(config.egress, db, calling_ae=config.ingest.ae_title).run_forever(done, wake)
    finally:
        db.dispose()


def _due_ids(now, destinations: list[str]):
    """The ids of due deliveries: pending ones whose time has come, and claimed ones whose
    claimer's lease ran out. Asked as two queries, each on the index of the state: one OR of
    the two made SQLite read every delivery ever made to the destination (86 ms a claim, and a
    claim at every poll, with a million of them), where the due ones are a handful."""
    pending = select(Delivery.id).where(Delivery.state == DeliveryState.PENDING, Delivery.next_attempt_at <= now,
                                        Delivery.destination.in_(destinations))
    stale = select(Delivery.id).where(Delivery.state == DeliveryState.SENDING, Delivery.lease_expires_at < now,
                                      Delivery.destination.in_(destinations))
    return union_all(pending, stale)


#: Answers are recorded at most this long after they arrive, so that a transaction records
#: several: they come one every few milliseconds, and each transaction costs about a millisecond
#: of the forwarder's time whatever its size. A crash resends the few not yet recorded.
ANSWERS_LINGER = 0.05


class _Answers:
    """The archive's answers for one claimed batch, recorded as they come (by ``record``, a few
    to a transaction) while the next instances are sent; counted by status for the log."""

    def __init__(self, record):
        self.recorder = BatchRecorder(record, linger=ANSWERS_LINGER)
        self.failures: Counter = Counter()
        self.futures: list = []
        self._lock = threading.Lock()

    def __enter__(self) -> _Answers:
        return self

    def __exit__(self, *exc) -> None:
        self.recorder.close()  # every answer recorded (or its error kept) before the batch ends

    def on_result(self, item: scu.Item, ok: bool, status: str) -> None:
        with self._lock:
            if not ok:
                self.failures[status] += 1
            self.futures.append(self.recorder.submit((item.delivery_id, ok, status), []))

    def report(self, destination: str) -> None:
        errors = Counter(type(future.exception()).__name__ for future in self.futures if future.exception())
        if errors:  # those deliveries stay claimed: once the lease runs out they are sent again
            log.error("recording %d answers from %s failed: %s", sum(errors.values()), destination, dict(errors))
        if self.failures:
            log.warning("%d deliveries to %s failed: %s", sum(self.failures.values()), destination,
                        dict(self.failures))


#: Fewer instances than this per association are not worth opening another for.
MIN_SHARE = 2


def _shares(items: list[scu.Item], associations: int) -> list[list[scu.Item]]:
    """``items`` dealt among up to ``associations`` associations, in order within each."""
    count = max(1, min(associations, len(items) // MIN_SHARE))
    return [items[n::count] for n in range(count)]
