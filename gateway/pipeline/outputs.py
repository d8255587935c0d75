"""What a de-identified instance leaves in the database: one output per profile, a delivery of
each output to every destination of its profile, the stages' details for the audit, and the
instance marked processed. The worker records several instances per transaction (see
:class:`~gateway.queue.recording.BatchRecorder`), after their files are durable in the outbox.

A batch costs a few statements whatever its size: the instances, outputs and deliveries it
touches are read with one query each; new outputs, their deliveries and the audit of the stages'
details are inserted with one statement each (as objects, each row took an INSERT of its own,
since the database returns each new id), and the rest is flushed at the commit. Read and
flushed one instance at a time, the same work took a fifth of the receiving process's time in
``bench/chain.py``: each lookup flushed the instance before it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from gateway.audit import events as audit
from gateway.egress.deliveries import insert_deliveries, schedule_deliveries
from gateway.pipeline import prepare
from gateway.pipeline.pipeline import ProfileResult
from gateway.queue.tables import Delivery, Instance, InstanceState, Output, Study
from gateway.rules.router import Decision

#: One instance ready to record: its queue row, its outputs (result, outbox path, de-identified
#: SOP Instance UID) and the rules' decision.
Entry = tuple[Any, list[tuple[ProfileResult, Path, str]], Decision]


@dataclass
class InstanceOutcome:
    kind: str  # processed, quarantined, dropped, skipped
    actions: dict[str, Counter] = field(default_factory=dict)
    options: set[str] = field(default_factory=set)


def record_batch(session: Session, job_id: int, entries: list[Entry], actor: str,
                 served: list) -> list[InstanceOutcome]:
    """Record every entry in ``session``; an instance replaced since the job began is skipped
    (nothing recorded). Files that have served go to ``served``, for deletion after the commit."""
    ids = [row.id for row, _, _ in entries]
    instances = {i.id: i for i in session.scalars(select(Instance).where(Instance.id.in_(ids)))}
    outputs = {(o.instance_id, o.profile): o
               for o in session.scalars(select(Output).where(Output.instance_id.in_(ids)))}
    new_outputs: list[dict] = []
    scheduled: list[tuple[tuple[int, str], int, tuple[str, ...]]] = []  # (instance, profile), study, destinations
    events: list[dict] = []
    outcomes = []
    with session.no_autoflush:
        for row, written, decision in entries:
            instance = instances[row.id]
            if not still_queued(instance, job_id, row):
                outcomes.append(InstanceOutcome("skipped"))  # a newer version arrived meanwhile
                continue
            study = session.get(Study, instance.study_id)
            for result, path, anon_uid in written:
                _output(outputs, new_outputs, instance, result, path, anon_uid)
                scheduled.append(((instance.id, result.profile), study.id, decision.routes[result.profile]))
            outcomes.append(_processed(instance, study, written, decision, actor, served, events))
    session.flush()
    ids = {key: output.id for key, output in outputs.items()} | _insert_outputs(session, new_outputs)
    _schedule(session, [(ids[key], study_id, routes) for key, study_id, routes in scheduled],
              earlier={output.id for output in outputs.values()})
    audit.record_all(session, events)
    return outcomes


def _output(outputs: dict, new_outputs: list[dict], instance: Instance, result: ProfileResult, path: Path,
            anon_uid: str) -> None:
    """The instance's output for this profile: brought up to date (processed again), or its
    columns added to ``new_outputs``."""
    columns = {"path": str(path), "anon_uid": anon_uid, "sop_class_uid": str(result.dataset.SOPClassUID),
               "transfer_syntax_uid": str(result.dataset.file_meta.TransferSyntaxUID)}
    output = outputs.get((instance.id, result.profile))
    if output is None:
        new_outputs.append({"instance_id": instance.id, "profile": result.profile, **columns})
        return
    for name, value in columns.items():
        setattr(output, name, value)


def _insert_outputs(session: Session, new_outputs: list[dict]) -> dict[tuple[int, str], int]:
    """The new outputs in one statement; returns their ids by (instance, profile). As objects,
    each took an INSERT of its own: SQLite returns the ids of a multi-row insert only unordered."""
    if not new_outputs:
        return {}
    rows = session.execute(insert(Output).returning(Output.id, Output.instance_id, Output.profile), new_outputs)
    return {(instance_id, profile): output_id for output_id, instance_id, profile in rows}


def _processed(instance: Instance, study: Study, written: list, decision: Decision, actor: str, served: list,
               events: list[dict]) -> InstanceOutcome:
    """The instance marked processed, its stages' details audited (into ``events``); what the
    job's audit counts."""
    first, _, anon_uid = written[0]
    instance.anon_uid = anon_uid
    instance.state = InstanceState.PROCESSED
    served.extend(forget_intermediate(instance))
    if study.anon_uid is None:
        study.anon_uid = str(first.dataset.StudyInstanceUID)
    for report in first.reports:
        if report.details:
            events.append(audit.columns(f"{report.stage}_detail", study=study, actor=actor,
                                        instance=instance.anon_uid, counts=report.counts, **report.details))
    actions = {r.stage: Counter(r.counts) for r in first.reports} | rule_count(decision.rule)
    return InstanceOutcome("processed", actions=actions, options=set(first.declared_options))


def _schedule(session: Session, scheduled: list, earlier: set[int]) -> None:
    """A delivery per destination of each output: new outputs have none yet; the deliveries of
    outputs made ``earlier`` (the study processed again) are read at once and start over."""
    existing: dict[int, dict[str, Delivery]] = {}
    if earlier:
        for delivery in session.scalars(select(Delivery).where(Delivery.output_id.in_(earlier))):
            existing.setdefault(delivery.output_id, {})[delivery.destination] = delivery
    added: list[dict] = []
    for output_id, study_id, destinations in scheduled:
        schedule_deliveries(session, output_id, study_id, destinations, existing=existing.get(output_id, {}), added=added)
    insert_deliveries(session, added)


def still_queued(instance: Instance, job_id: int, row) -> bool:
    """Whether the row is still the version this job took (no newer one arrived meanwhile)."""
    return instance.job_id == job_id and instance.sha256 == row.sha256 and instance.state == InstanceState.QUEUED


def forget_intermediate(instance: Instance) -> tuple[str | None, str | None]:
    """The intermediate and the preparation have served once the instance is processed or kept
    back; returns their files, which the caller deletes after the commit (before it, the row
    still needs them)."""
    path = instance.intermediate_path
    instance.intermediate_path = None
    instance.intermediate_context = None
    return path, prepare.forget(instance)


def rule_count(rule: str | None) -> dict[str, Counter]:
    """The rule that decided, for the job's audit (``actions.rules``); nothing without one."""
    return {"rules": Counter({rule: 1})} if rule else {}
