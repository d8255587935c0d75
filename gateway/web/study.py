"""The study page and its thumbnails."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from sqlalchemy import func, select

from gateway.audit.report import find_study
from gateway.audit.review import VERDICTS, signoffs
from gateway.audit.tables import AuditEvent
from gateway.queue.tables import Delivery, DeliveryState, Instance, Job, JobState, Output
from gateway.web.auth import Visitor, viewing
from gateway.web.layout import render
from gateway.web.studyview import outlines_for_output, study_pixels
from gateway.web.thumbs import NotAnOutput, thumbnail

router = APIRouter()


def _deliveries(session, study_id: int) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for destination, state, n in session.execute(
        select(Delivery.destination, Delivery.state, func.count())
        .where(Delivery.study_id == study_id).group_by(Delivery.destination, Delivery.state)
    ).all():
        out.setdefault(destination, {})[state] = n
    return out


def _has_failures(session, study_id: int) -> bool:
    failed_delivery = select(Delivery.id).where(Delivery.study_id == study_id,
                                                Delivery.state == DeliveryState.FAILED).limit(1)
    failed_job = select(Job.id).where(Job.study_id == study_id, Job.state == JobState.FAILED).limit(1)
    return bool(session.scalar(failed_delivery) or session.scalar(failed_job))


@router.get("/studies/{ref:path}")
def study_page(ref: str, request: Request, who: Visitor = Depends(viewing), all: int = 0):  # noqa: A002
    console = request.app.state.console
    web = console.config.web
    with console.db.reading() as session:
        study = find_study(session, ref)
        if study is None:
            raise HTTPException(404, "no such study")
        instances = dict(session.execute(select(Instance.state, func.count()).where(
            Instance.study_id == study.id).group_by(Instance.state)).all())
        pixels = study_pixels(session, study, console.config.profiles_in_use(), web.thumbnails_per_series,
                              web.thumbnail_frames, show_all=bool(all))
        events = session.scalars(select(AuditEvent).where(AuditEvent.study_id == study.id)
                                 .order_by(AuditEvent.id)).all()
        return render(
            request, "study.html", who, title=f"Study {study.label}", study=study, instances=instances,
            deliveries=_deliveries(session, study.id), failures=_has_failures(session, study.id),
            pixels=pixels, signoffs=signoffs(session, study), verdicts=VERDICTS, events=events,
            destinations=console.destinations(), can_act=who.user.can("operator"), show_all=bool(all))


@router.get("/thumbnails/{output_id}/{frame}.png")
def thumbnail_png(output_id: int, frame: int, request: Request, who: Visitor = Depends(viewing)):
    console = request.app.state.console
    with console.db.reading() as session:
        output = session.get(Output, output_id)
        if output is None:
            raise HTTPException(404, "no such output")
        outlines = outlines_for_output(session, output)
        path = output.path
    try:
        png = thumbnail(path, console.config.storage.outbox, frame, outlines, console.config.web.thumbnail_size)
    except NotAnOutput:
        raise HTTPException(404, "the output is no longer in the outbox") from None
    except Exception:  # noqa: BLE001 - an undecodable output shows as a missing picture
        raise HTTPException(422, "this output cannot be rendered") from None
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=300"})
