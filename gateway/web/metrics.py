"""``/metrics`` (Prometheus), ``/healthz`` and ``/readyz``.

Receivers, workers and forwarders may be separate processes on separate hosts, so nothing is
counted in-process: the shared database is the source. Queue depths and states are counted at
scrape time. Totals (received, processed, quarantined by reason, delivered by destination,
association and TLS failures) and the stage-duration histograms come from the audit trail, read
incrementally (:class:`AuditTally`): each scrape reads only the events added since the last,
and a restarted console counts from the first event again, so the totals are the same whichever
console process a scraper asks.
"""

from __future__ import annotations

import importlib.util
import threading
from collections import Counter, defaultdict
from datetime import timedelta, timezone
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from sqlalchemy import func, or_, select, text

from gateway.audit import events as audit
from gateway.audit import seals
from gateway.audit.report import in_quarantine
from gateway.audit.tables import AuditEvent
from gateway.db import Database
from gateway.files import free_bytes
from gateway.queue.tables import (
    Delivery,
    Instance,
    Job,
    JobPhase,
    JobState,
    QuarantineEntry,
    Study,
    utcnow,
)

P = "deid_gateway_"
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
#: An event older than this is taken to be committed, with every event before it.
SETTLE = timedelta(seconds=120)
COUNTED = (audit.RECEIVED, audit.REFUSED, audit.PROCESSED, audit.QUARANTINED, audit.FORWARDED,
           audit.FAILED, audit.REJECTED_ASSOCIATION, audit.TLS_FAILURE, audit.PROCESS_ENDED)


class AuditTally:
    """Totals over the audit trail, brought up to date at each scrape."""

    def __init__(self, db: Database):
        self.db = db
        self.lock = threading.Lock()
        self.settled_id = 0  # every event up to this id has been counted
        self.seen: set[int] = set()  # counted events above settled_id
        self.totals: dict[str, Counter] = defaultdict(Counter)
        self.stage_seconds: dict[str, list[float]] = defaultdict(lambda: [0.0] * (len(BUCKETS) + 2))

    def update(self) -> None:
        with self.lock, self.db.reading() as session:
            rows = session.execute(
                select(AuditEvent.id, AuditEvent.at, AuditEvent.event, AuditEvent.detail)
                .where(AuditEvent.id > self.settled_id,
                       or_(AuditEvent.event.in_(COUNTED), AuditEvent.event.like("%\\_detail", escape="\\")))
                .order_by(AuditEvent.id)
            ).all()
            cutoff = utcnow() - SETTLE
            for row in rows:
                if row.id not in self.seen:
                    self.seen.add(row.id)
                    self._count(row.event, row.detail or {})
            settled = [row.id for row in rows if row.at < cutoff]
            if settled:
                self.settled_id = max(self.settled_id, max(settled))
                self.seen = {i for i in self.seen if i > self.settled_id}

    def _count(self, event: str, detail: dict) -> None:
        t = self.totals
        if event == audit.RECEIVED:
            t["received"][()] += int(detail.get("instances", 0))
        elif event == audit.REFUSED:
            t["refused"][()] += int(detail.get("instances", 0))
        elif event == audit.PROCESSED:
            t["processed"][()] += int(detail.get("instances", 0))
        elif event == audit.QUARANTINED:
            t["quarantined"][(str(detail.get("stage", "")), str(detail.get("reason", "")))] += 1
        elif event == audit.FORWARDED:
            for destination, n in (detail.get("sent") or {}).items():
                t["delivered"][(str(destination),)] += int(n)
        elif event == audit.FAILED:
            t["failed"][(str(detail.get("reason", "")),)] += 1
        elif event == audit.REJECTED_ASSOCIATION:  # one refusal, or a count (gateway.ingest.refusals)
            t["rejected"][(str(detail.get("reason", "")),)] += int(detail.get("refusals", 1))
        elif event == audit.TLS_FAILURE:
            t["tls"][(str(detail.get("direction", "")), str(detail.get("destination", "")))] += int(
                detail.get("refusals", 1))
        elif event == audit.PROCESS_ENDED:
            t["ended"][(str(detail.get("process", "")),)] += 1
        elif event.endswith("_detail") and isinstance(detail.get("seconds"), int | float):
            self._observe(event.removesuffix("_detail"), float(detail["seconds"]))

    def _observe(self, stage: str, seconds: float) -> None:
        """Per bucket (non-cumulative), then +Inf, then the sum."""
        slots = self.stage_seconds[stage]
        index = next((i for i, le in enumerate(BUCKETS) if seconds <= le), len(BUCKETS))
        slots[index] += 1
        slots[-1] += seconds


COUNTERS = {  # key in AuditTally.totals: (name, help, labels)
    "received": ("instances_received", "Instances received and acknowledged over DICOM", []),
    "refused": ("instances_refused", "Instances refused at ingest (quarantined there)", []),
    "processed": ("instances_processed", "Instances de-identified and written to the outbox", []),
    "quarantined": ("instances_quarantined", "Instances kept back, by stage and reason", ["stage", "reason"]),
    "delivered": ("instances_delivered", "Instances accepted by a destination, counted when "
                  "their study's deliveries finish", ["destination"]),
    "failed": ("studies_failed", "Studies marked failed, by reason", ["reason"]),
    "rejected": ("associations_rejected", "Associations rejected, by reason", ["reason"]),
    "tls": ("tls_failures", "TLS handshakes that failed, by direction and peer", ["direction", "destination"]),
    "ended": ("processes_restarted", "Processes of serve that ended untold (a crash, the OOM killer) and "
              "were started again, by kind", ["process"]),
}


class Collector:
    """Everything ``/metrics`` shows, computed at scrape time."""

    def __init__(self, db: Database, config):
        self.db = db
        self.config = config
        self.tally = AuditTally(db)

    def collect(self):
        self.tally.update()
        with self.tally.lock:
            yield from self._totals()
        yield from self._gauges()

    def _totals(self):
        for key, (name, doc, labels) in COUNTERS.items():
            family = CounterMetricFamily(P + name, doc, labels=labels)
            for values, n in sorted(self.tally.totals[key].items()):
                family.add_metric(list(values), n)
            yield family
        hist = HistogramMetricFamily(P + "stage_seconds", "Time a stage spent on one instance",
                                     labels=["stage"])
        for stage, slots in sorted(self.tally.stage_seconds.items()):
            cumulative, buckets = 0.0, []
            for le, n in zip([*map(str, BUCKETS), "+Inf"], slots[:-1], strict=True):
                cumulative += n
                buckets.append((le, cumulative))
            hist.add_metric([stage], buckets, sum_value=slots[-1])
        yield hist

    def _gauges(self):
        with self.db.reading() as session:
            yield _by(session, "studies", "Studies by state", Study.state)
            yield _by(session, "instances", "Instances by state", Instance.state)
            yield _by(session, "jobs", "Jobs by state", Job.state)
            yield _by(session, "deliveries", "Deliveries by destination and state", Delivery.destination,
                      Delivery.state)
            yield _by(session, "quarantined", "What is in quarantine now, by stage", QuarantineEntry.stage,
                      where=in_quarantine())
            depth = GaugeMetricFamily(P + "queue_depth", "Jobs waiting, by the worker role that takes them",
                                      labels=["role"])
            waiting: Counter = Counter({JobPhase.PIXELS: 0, JobPhase.HEADERS: 0})
            for phase, n in session.execute(select(Job.phase, func.count()).where(
                    Job.state == JobState.PENDING).group_by(Job.phase)).all():
                waiting[phase or JobPhase.PIXELS] += n
            for role, n in sorted(waiting.items()):
                depth.add_metric([role], n)
            yield depth
            yield from _sealing(session)
        disk = GaugeMetricFamily(P + "disk_free_bytes", "Free space where the gateway keeps files",
                                 labels=["area"])
        for area, folder in (("spool", self.config.storage.spool), ("outbox", self.config.storage.outbox)):
            if folder.exists():
                disk.add_metric([area], free_bytes(folder))
        yield disk


def _sealing(session):
    """Rows waiting for a seal, and when the last seal was made: an alert on both (rows waiting
    and no seal for some minutes) says that no ``serve`` is sealing the audit trail."""
    done = seals.progress(session)
    yield GaugeMetricFamily(P + "audit_unsealed_rows", "Audit rows written since the last seal", value=done.unsealed)
    at = done.last_seal_at.replace(tzinfo=timezone.utc).timestamp() if done.last_seal_at else 0.0
    yield GaugeMetricFamily(P + "audit_last_seal_timestamp_seconds", "When the last audit seal was made (0: never)",
                            value=at)


def _by(session, name: str, doc: str, *columns, where=None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(P + name, doc, labels=[c.key for c in columns])
    query = select(*columns, func.count()).group_by(*columns)
    if where is not None:
        query = query.where(where)
    for *values, n in session.execute(query).all():
        family.add_metric([str(v) for v in values], n)
    return family


def registry_for(db: Database, config) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector(db, config))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


# -- health -----------------------------------------------------------------------------------
def readiness(db: Database, config) -> dict[str, bool]:
    """What a load balancer or orchestrator needs before sending work: the database answers,
    the spool has room above ``storage.min_free_bytes``, and, with the pixel stage on, the
    model weights a worker loads are present."""
    checks = {}
    try:
        with db.reading() as session:
            session.execute(text("SELECT 1"))
        checks["database"] = True
    except Exception:  # noqa: BLE001 - any failure means not ready
        checks["database"] = False
    spool = config.storage.spool
    checks["disk"] = spool.exists() and free_bytes(spool) > config.storage.min_free_bytes
    if config.pixels.enabled:
        weights = config.pixels.weights_dir or _shipped_weights()
        checks["models"] = weights is not None and any(Path(weights).glob("detector.*"))
    return checks


def _shipped_weights() -> Path | None:
    spec = importlib.util.find_spec("models")
    return Path(spec.origin).parent / "weights" if spec and spec.origin else None
