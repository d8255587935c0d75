"""The operator's console: a FastAPI application over the gateway's database and outbox.

Pages (:mod:`pages`, :mod:`study`) are for any logged-in user; actions (:mod:`actions`) for
operators; accounts and originals for admins (:mod:`login`, :mod:`actions`). With
``web.oidc.enabled``, staff also sign on through the hospital's identity provider (:mod:`sso`).
``/metrics``
answers a logged-in user or a scraper's bearer token (``web.metrics_token_sha256``);
``/healthz`` and ``/readyz`` answer anyone, for probes, and carry no more than yes or no.
With ``web.stow.enabled``, senders store instances at ``/dicomweb/studies`` (:mod:`stow`).
Every response forbids framing and inline script, and pages are never cached.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from itsdangerous import URLSafeTimedSerializer
from jinja2 import Environment
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.db import Database
from gateway.ingest.stow import StowIntake
from gateway.web import actions, login, pages, sso, stow, study, throttle, tokens
from gateway.web.auth import Forbidden, NotLoggedIn, make_signer, renew_session, visitor
from gateway.web.layout import make_environment, render, stylesheet
from gateway.web.metrics import exposition, readiness, registry_for
from gateway.web.oidc import Provider
from gateway.web.users import UserStore

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
#: Sent when the console is reached over HTTPS (its own TLS, or a proxy's): a year, this host only
#: (other hosts of the domain are not the gateway's to decide for).
HSTS = "max-age=31536000"


@dataclass
class Console:
    """What every request handler needs, kept on ``app.state.console``."""

    config: object  # gateway.config.GatewayConfig
    db: Database
    users: UserStore
    signer: URLSafeTimedSerializer
    templates: Environment
    login_refusals: throttle.Refusals

    def destinations(self) -> list[str]:
        return [d.name for d in self.config.egress.destinations]


def create_app(config, db: Database, secret: bytes, users: UserStore | None = None) -> FastAPI:
    """The console for ``config`` (a :class:`gateway.config.GatewayConfig`)."""
    app = FastAPI(title="deid-gateway console", docs_url=None, redoc_url=None, openapi_url=None, lifespan=_lifespan)
    users = users or UserStore(config.web.users_path(config.storage.root))
    app.state.console = Console(config, db, users, make_signer(secret), make_environment(), throttle.Refusals(db))
    for router in (login.router, pages.router, study.router, actions.router):
        app.include_router(router)
    if config.web.oidc.enabled:  # a missing client secret stops start-up here, not at the first sign-in
        app.state.sso = Provider(config.web.oidc)
        app.include_router(sso.router)
    if config.web.stow.enabled:
        intake = StowIntake(config.ingest, config.storage, db, secret, config.web.stow.max_part_bytes)
        app.state.stow = stow.Stow(config.web.stow, intake)
        app.include_router(stow.router)
    _add_operations(app, config, db)
    _add_handlers(app)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """As the console stops, the refusals counted but not yet written (STOW-RS requests, login
    attempts) are written."""
    yield
    await run_in_threadpool(app.state.console.login_refusals.flush)
    if hasattr(app.state, "stow"):
        await run_in_threadpool(app.state.stow.refusals.flush)


def _add_operations(app: FastAPI, config, db: Database) -> None:
    registry = registry_for(db, config)
    css = stylesheet()

    @app.get("/metrics")
    def metrics(request: Request) -> Response:
        token = tokens.presented(request.headers.get("authorization"))
        if not any(tokens.matches(token, config.web.metrics_token_sha256)) and visitor(request) is None:
            return PlainTextResponse("authentication required", status_code=401,
                                     headers={"WWW-Authenticate": 'Bearer realm="deid-gateway metrics"'})
        return Response(exposition(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        checks = readiness(db, config)
        return JSONResponse({"ready": all(checks.values()), "checks": checks},
                            status_code=200 if all(checks.values()) else 503)

    @app.get("/static/console.css")
    def console_css() -> Response:
        return Response(css, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})


def _add_handlers(app: FastAPI) -> None:
    https = app.state.console.config.web.https

    @app.middleware("http")
    async def headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        renew_session(request, response)
        if https:  # browsers then never try this console in clear, nor let a user click through a bad certificate
            response.headers["Strict-Transport-Security"] = HSTS
        if response.headers.get("content-type", "").startswith("text/html"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(NotLoggedIn)
    async def not_logged_in(request: Request, _exc: NotLoggedIn):
        if request.method != "GET":
            return PlainTextResponse("log in first", status_code=401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden):
        return render(request, "message.html", visitor(request), title="Not allowed", message=exc.why,
                      status_code=403)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return render(request, "message.html", visitor(request), title="Not found" if exc.status_code == 404
                      else "Error", message=str(exc.detail), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, _exc: RequestValidationError):
        # FastAPI's own answer would echo the submitted values back.
        return PlainTextResponse("bad request", status_code=422)
