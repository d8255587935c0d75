"""Which deliveries the forwarder claims, on SQLite and PostgreSQL: pending ones whose time has
come and sending ones whose claimer's lease ran out, for one destination at a time, the one due
first; never a delivery that is sent, failed, waiting for its retry or held by a live claim."""

from __future__ import annotations

from datetime import timedelta

from gateway.egress.config import EgressConfig
from gateway.egress.forwarder import Forwarder
from gateway.queue.tables import (
    Delivery,
    DeliveryState,
    Instance,
    Output,
    Study,
    utcnow,
)
from tests.queue.test_jobs import config, db  # noqa: F401 - the fixtures

PENDING, SENDING, SENT, FAILED = DeliveryState.PENDING, DeliveryState.SENDING, DeliveryState.SENT, DeliveryState.FAILED


def _deliveries(db, rows: list[tuple[str, str, float, float | None]]) -> dict[str, int]:
    """(name, state, minutes until the next attempt, minutes until the claim's lease runs out) to
    the destination named by the name's first letter; returns each name's delivery id."""
    now, ids = utcnow(), {}
    with db.session() as session:
        study = Study(study_key="k" * 64)
        session.add(study)
        session.flush()
        for n, (name, state, next_in, lease_in) in enumerate(rows):
            instance = Instance(study_id=study.id, sop_key=f"{n}".ljust(64, "0"), sop_class_uid="1.2",
                                transfer_syntax_uid="1.2.840.10008.1.2.1", sha256="0" * 64, size=1)
            session.add(instance)
            session.flush()
            output = Output(instance_id=instance.id, profile="default", path=f"/outbox/{n}", anon_uid=f"2.25.{n}",
                            sop_class_uid="1.2", transfer_syntax_uid="1.2.840.10008.1.2.1")
            session.add(output)
            session.flush()
            delivery = Delivery(output_id=output.id, study_id=study.id, destination=name[0], state=state,
                                next_attempt_at=now + timedelta(minutes=next_in),
                                lease_owner="someone" if lease_in is not None else None,
                                lease_expires_at=now + timedelta(minutes=lease_in) if lease_in is not None else None)
            session.add(delivery)
            session.flush()
            ids[name] = delivery.id
    return ids


def _forwarder(db, batch_size: int = 10) -> Forwarder:
    destinations = [{"name": name, "ae_title": "ARCHIVE", "host": "127.0.0.1", "port": 104} for name in "ab"]
    return Forwarder(EgressConfig(destinations=destinations, batch_size=batch_size), db, "DEID_GW")


def test_only_due_deliveries_are_claimed_destination_by_destination(db):
    ids = _deliveries(db, [
        ("a-due", PENDING, -5, None), ("a-retry-later", PENDING, 5, None), ("a-sent", SENT, -60, None),
        ("a-failed", FAILED, -60, None), ("a-held", SENDING, -1, 5), ("a-abandoned", SENDING, -1, -1),
        ("b-due-first", PENDING, -10, None), ("b-due", PENDING, -1, None),
    ])
    forwarder = _forwarder(db)

    first = forwarder.claim()
    second = forwarder.claim()

    assert first[0] == "b" and [item.delivery_id for item in first[1]] == [ids["b-due-first"], ids["b-due"]]
    assert second[0] == "a" and sorted(item.delivery_id for item in second[1]) == sorted(
        [ids["a-due"], ids["a-abandoned"]])
    assert forwarder.claim() is None
    with db.session() as session:
        owners = {name: session.get(Delivery, ids[name]).lease_owner for name in ("a-due", "a-abandoned", "a-held")}
    assert owners == {"a-due": forwarder.owner, "a-abandoned": forwarder.owner, "a-held": "someone"}


def test_a_claim_takes_at_most_a_batch(db):
    _deliveries(db, [(f"a{n}", PENDING, -1, None) for n in range(5)])
    forwarder = _forwarder(db, batch_size=3)

    assert [len(forwarder.claim()[1]) for _ in range(2)] == [3, 2]
    assert forwarder.claim() is None
