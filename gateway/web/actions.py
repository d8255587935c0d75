"""What an operator can do from the console: release, discard, retry, re-push, reprocess,
sign off; and an admin's download of a quarantined original.

Each is a POST carrying the session's CSRF token (:func:`gateway.web.auth.acting`), runs the
same function as the command line (:mod:`gateway.queue.retry`) in one transaction with its
audit event, and answers with a redirect (303) to the page it came from, naming a notice.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse

from gateway.audit.review import VERDICTS, sign_off
from gateway.queue import retry
from gateway.queue.tables import Study
from gateway.web.auth import ADMIN, Visitor, acting
from gateway.web.layout import render

router = APIRouter()


def _back(path: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?done={done}", status_code=303)


def _refused(request: Request, who: Visitor, exc: retry.ActionRefused, back: str):
    return render(request, "message.html", who, title="Not done", message=str(exc), back=back,
                  status_code=409)


def _study(session, study_id: int) -> Study:
    study = session.get(Study, study_id)
    if study is None:
        raise HTTPException(404, "no such study")
    return study


@router.post("/quarantine/{entry_id}/release")
def release(entry_id: int, request: Request, who: Visitor = Depends(acting())):
    try:
        with request.app.state.console.db.session() as session:
            retry.release(session, entry_id, who.actor)
    except retry.ActionRefused as exc:
        return _refused(request, who, exc, "/quarantine")
    return _back("/quarantine", "released")


@router.post("/quarantine/{entry_id}/discard")
def discard(entry_id: int, request: Request, who: Visitor = Depends(acting())):
    try:
        with request.app.state.console.db.session() as session:
            retry.discard(session, entry_id, who.actor)
    except retry.ActionRefused as exc:
        return _refused(request, who, exc, "/quarantine")
    return _back("/quarantine", "discarded")


@router.post("/quarantine/{entry_id}/original")
def original(entry_id: int, request: Request, who: Visitor = Depends(acting(ADMIN))):
    """The original as received, for forensic review: it holds patient data, so only an admin
    gets it, the audit records who and when before a byte is sent, and nothing may cache it."""
    try:
        with request.app.state.console.db.session() as session:
            path = retry.original_for_review(session, entry_id, who.actor)
    except retry.ActionRefused as exc:
        return _refused(request, who, exc, "/quarantine")
    return FileResponse(path, media_type="application/octet-stream",
                        filename=f"quarantine-{entry_id}.dcm",
                        headers={"Cache-Control": "no-store"})


@router.post("/studies/{study_id}/retry")
def retry_study(study_id: int, request: Request, who: Visitor = Depends(acting())):
    with request.app.state.console.db.session() as session:
        study = _study(session, study_id)
        retry.retry_study(session, study, who.actor)
        label = study.label
    return _back(f"/studies/{label}", "retried")


@router.post("/studies/{study_id}/repush")
def repush(study_id: int, request: Request, destination: str = Form(...),
           who: Visitor = Depends(acting())):
    config = request.app.state.console.config
    profile = config.profile_by_destination().get(destination)
    if profile is None:
        raise HTTPException(404, "no such destination")
    try:
        with request.app.state.console.db.session() as session:
            study = _study(session, study_id)
            label = study.label
            retry.repush(session, study, destination, profile, who.actor)
    except retry.ActionRefused as exc:
        return _refused(request, who, exc, f"/studies/{label}")
    return _back(f"/studies/{label}", "repushed")


@router.post("/studies/{study_id}/reprocess")
def reprocess(study_id: int, request: Request, who: Visitor = Depends(acting())):
    try:
        with request.app.state.console.db.session() as session:
            study = _study(session, study_id)
            label = study.label
            retry.reprocess(session, study, who.actor)
    except retry.ActionRefused as exc:
        return _refused(request, who, exc, f"/studies/{label}")
    return _back(f"/studies/{label}", "reprocessed")


@router.post("/studies/{study_id}/signoff")
def signoff(study_id: int, request: Request, verdict: str = Form(...), who: Visitor = Depends(acting())):
    if verdict not in VERDICTS:
        raise HTTPException(422, "unknown verdict")
    with request.app.state.console.db.session() as session:
        study = _study(session, study_id)
        sign_off(session, study, who.user.name, verdict, who.actor)
        label = study.label
    return _back(f"/studies/{label}", "signed")
