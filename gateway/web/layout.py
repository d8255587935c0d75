"""Rendering pages: Jinja2 templates with autoescaping, the console's style sheet, and the
short notices shown after an action.

A notice is named in the redirect (``?done=released``) and its text comes from
:data:`NOTICES`, so nothing a request carries is ever written into a page as it came.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from gateway.web.auth import Visitor

TEMPLATES = Path(__file__).with_name("templates")

NOTICES = {
    "released": "Released: the instance is queued to be processed again under the current configuration.",
    "discarded": "Deleted from quarantine.",
    "retried": "Failed jobs and deliveries of the study are queued again.",
    "repushed": "The study's outputs are queued for the destination again.",
    "reprocessed": "The study's originals are queued to be processed again.",
    "signed": "Your QA sign-off is recorded in the audit trail.",
    "user_saved": "The account is saved.",
    "user_removed": "The account is removed.",
}


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if at else "-"


def _compact(detail: dict) -> str:
    return json.dumps(detail, sort_keys=True, separators=(", ", ": "))


def make_environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = _when
    env.filters["compact"] = _compact
    return env


def render(request: Request, template: str, visitor: Visitor | None, *, title: str,
           status_code: int = 200, **context) -> HTMLResponse:
    env = request.app.state.console.templates
    done = request.query_params.get("done")
    html = env.get_template(template).render(
        title=title, visitor=visitor, notice=NOTICES.get(done or ""), **context)
    return HTMLResponse(html, status_code=status_code)


def stylesheet() -> str:
    return (TEMPLATES / "console.css").read_text()
