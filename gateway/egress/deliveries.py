"""Deliveries: which destination still has to receive which output.

The worker records an output; this module turns it into one delivery per destination of that
output's profile, for the forwarder to claim. A corrected version of an instance already sent
(the sender replaced it, the study was processed again) is sent again: its delivery starts over.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from gateway.queue.tables import Delivery, DeliveryState, utcnow


def schedule_deliveries(session: Session, output_id: int, study_id: int, destinations: Iterable[str],
                        existing: dict[str, Delivery] | None = None, added: list[dict] | None = None) -> None:
    """A pending delivery of output ``output_id`` to each of ``destinations``.
    ``existing``: the output's deliveries by destination, when the caller has read them already;
    ``added``: where new deliveries go (their columns), for the caller to insert together, with
    one statement (:func:`insert_deliveries`), instead of into the session one by one."""
    for destination in destinations:
        if existing is not None:
            delivery = existing.get(destination)
        else:
            delivery = session.scalars(
                select(Delivery).where(Delivery.output_id == output_id, Delivery.destination == destination)
            ).one_or_none()
        if delivery is None and added is not None:
            added.append({"output_id": output_id, "study_id": study_id, "destination": destination})
        elif delivery is None:
            session.add(Delivery(output_id=output_id, study_id=study_id, destination=destination))
        else:
            delivery.state = DeliveryState.PENDING
            delivery.attempts = 0
            delivery.next_attempt_at = utcnow()
            delivery.delivered_at = None


def insert_deliveries(session: Session, added: list[dict]) -> None:
    """The deliveries :func:`schedule_deliveries` collected in ``added``, in one statement: as
    objects, each took an INSERT of its own (SQLite returns each new id)."""
    if added:
        session.execute(insert(Delivery), added)
