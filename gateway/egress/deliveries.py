"""Deliveries: which destination still has to receive which output.

The worker records an output; this module turns it into one delivery per destination of that
output's profile, for the forwarder to claim. A corrected version of an instance already sent
(the sender replaced it, the study was processed again) is sent again: its delivery starts over.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.queue.tables import Delivery, DeliveryState, Output, utcnow


def schedule_deliveries(session: Session, output: Output, study_id: int, destinations: Iterable[str],
                        existing: dict[str, Delivery] | None = None) -> None:
    """A pending delivery of ``output`` (flushed, so it has an id) to each of ``destinations``.
    ``existing``: the output's deliveries by destination, when the caller has read them already."""
    for destination in destinations:
        if existing is not None:
            delivery = existing.get(destination)
        else:
            delivery = session.scalars(
                select(Delivery).where(Delivery.output_id == output.id, Delivery.destination == destination)
            ).one_or_none()
        if delivery is None:
            session.add(Delivery(output_id=output.id, study_id=study_id, destination=destination))
        else:
            delivery.state = DeliveryState.PENDING
            delivery.attempts = 0
            delivery.next_attempt_at = utcnow()
            delivery.delivered_at = None
