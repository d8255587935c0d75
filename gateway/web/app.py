"""The audit review page: queue status, the audit trail, one study, the quarantine.

Read-only, and showing only what the command line shows: counts, states, times and
de-identified UIDs. It binds to loopback by default (``web.host``); put it behind the site's
authenticating reverse proxy to open it wider.
"""

from __future__ import annotations

import json
from html import escape

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from gateway.audit.tables import AuditEvent
from gateway.audit.report import find_study, quarantine_lines, status_lines, study_summary
from gateway.db import Database

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f4} pre{background:#f8f8f8;padding:1rem} code{font-size:.85rem}
nav a{margin-right:1rem}
"""


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><nav><a href='/'>status</a><a href='/audit'>audit</a>"
        f"<a href='/quarantine'>quarantine</a></nav><h1>{escape(title)}</h1>{body}</body></html>"
    )


def _events_table(events: list[AuditEvent]) -> str:
    rows = "".join(
        f"<tr><td>{e.at:%Y-%m-%d %H:%M:%S}</td><td>{escape(e.event)}</td>"
        f"<td>{_study_link(e.study)}</td><td>{escape(e.actor or '')}</td>"
        f"<td><code>{escape(json.dumps(e.detail, sort_keys=True))}</code></td></tr>"
        for e in events
    )
    return ("<table><tr><th>time (UTC)</th><th>event</th><th>study</th><th>by</th><th>detail</th></tr>"
            f"{rows}</table>")


def _study_link(label: str | None) -> str:
    if not label:
        return "-"
    return f"<a href='/studies/{escape(label)}'>{escape(label)}</a>"


def create_app(db: Database) -> FastAPI:
    app = FastAPI(title="deid-gateway audit", docs_url=None, redoc_url=None)

    @app.get("/", response_class=HTMLResponse)
    def status() -> HTMLResponse:
        with db.reading() as session:
            return _page("Gateway status", f"<pre>{escape(chr(10).join(status_lines(session)))}</pre>")

    @app.get("/audit", response_class=HTMLResponse)
    def audit(event: str | None = None, limit: int = Query(200, le=5000)) -> HTMLResponse:
        with db.reading() as session:
            query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
            if event:
                query = query.where(AuditEvent.event == event)
            events = list(reversed(session.scalars(query).all()))
            return _page("Audit trail", _events_table(events))

    @app.get("/studies/{ref:path}", response_class=HTMLResponse)
    def study(ref: str) -> HTMLResponse:
        with db.reading() as session:
            found = find_study(session, ref)
            if found is None:
                raise HTTPException(404, "no such study")
            events = session.scalars(
                select(AuditEvent).where(AuditEvent.study_id == found.id).order_by(AuditEvent.id)
            ).all()
            summary = escape("\n".join(study_summary(session, found)))
            return _page(f"Study {found.label}", f"<pre>{summary}</pre>{_events_table(list(events))}")

    @app.get("/quarantine", response_class=HTMLResponse)
    def quarantine() -> HTMLResponse:
        with db.reading() as session:
            lines = quarantine_lines(session) or ["quarantine is empty"]
            return _page("Quarantine", f"<pre>{escape(chr(10).join(lines))}</pre>")

    return app
