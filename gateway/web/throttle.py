"""Login throttling: failures counted in the audit trail, and the browsers that may still try.

Failed logins are audited, and the throttle counts them there, so it holds across processes.
Three counts lock further attempts until ``web.login_window_minutes`` has passed: the failures
of one account name (``web.login_max_failures``), those from one client address (four times as
many), and those of every client together (``web.login_max_failures_overall``). The last is for
guessing spread over many addresses (a botnet, a client with a new IPv6 address each time) and
for names that are no account, which the first cannot see: they are not written down, since a
mistyped name may be a password. A refused attempt is answered before its password is checked:
argon2 costs a tenth of a second of CPU and 64 MiB, and is what such a flood spends.

Counts that anyone can run up would let anyone lock the real users out. So a browser a user has
logged in from keeps a device cookie (signed, for that account and its password's generation,
for ``web.login_device_days``, sent to the login form only), and its attempts for that account
are held to the failures made with that same cookie alone (OWASP's "device cookies"). A flood
cannot lock a user out of her own browser; a stolen browser still gets only
``login_max_failures`` guesses a window. A browser remembers the last account that logged in
from it (a workstation shared by two users spares whichever logged in last). What it costs:
during an attack, a user on a browser she has not logged in from before waits, like everyone
else, for the window to pass.

Refused attempts are audited as the receiver audits refused associations
(:class:`gateway.ingest.refusals.RefusalLedger`): the first of each minute per client address,
the rest counted into one row a minute, with the same bounds over many addresses; the counts
still held are written as the console stops.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from fastapi import Request
from itsdangerous import BadSignature
from sqlalchemy import func, select

from gateway.audit import events as audit
from gateway.audit.tables import AuditEvent
from gateway.ingest.refusals import RefusalLedger
from gateway.queue.tables import utcnow
from gateway.web.users import User

LOGIN_FAILED = "login_failed"
WRONG_PASSWORD = "wrong user name or password"
TOO_MANY_FAILURES = "too many failures"
DEVICE_COOKIE = "deid_device"
_DEVICE_SALT = "login-device"


@dataclass(frozen=True)
class Attempt:
    """A login attempt, as the throttle sees it."""

    name: str
    client: str
    #: The nonce of the device cookie the browser holds for this account, if it holds a valid one.
    device: str | None = None


def _detail(key: str):
    return AuditEvent.detail[key].as_string()


def throttled(session, web, attempt: Attempt) -> bool:
    """Whether ``attempt`` is refused unchecked: too many failures within the window, counted by
    the database in one pass over the window's failures (which the refusals' ledger keeps few)."""
    since = utcnow() - timedelta(minutes=web.login_window_minutes)
    failures = select(func.count()).where(AuditEvent.event == LOGIN_FAILED, AuditEvent.at >= since)
    if attempt.device is not None:
        return session.scalar(failures.where(_detail("device") == attempt.device)) >= web.login_max_failures
    by_name, by_client, overall = session.execute(
        select(func.count().filter(_detail("user") == attempt.name),
               func.count().filter(_detail("client") == attempt.client),
               func.count().filter(_detail("reason") == WRONG_PASSWORD))
        .where(AuditEvent.event == LOGIN_FAILED, AuditEvent.at >= since)
    ).one()
    return (by_name >= web.login_max_failures or by_client >= 4 * web.login_max_failures
            or overall >= web.login_max_failures_overall)


# -- device cookies ---------------------------------------------------------------------------
def device_of(request: Request, user: User | None) -> str | None:
    """The nonce of the request's device cookie, if it is genuine, unexpired and ``user``'s,
    made under her present password (a new password makes every browser new again)."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw or user is None:
        return None
    console = request.app.state.console
    try:
        data = console.signer.loads(raw, salt=_DEVICE_SALT, max_age=console.config.web.login_device_days * 86400)
    except BadSignature:
        return None
    if not isinstance(data, dict) or data.get("u") != user.name or data.get("g") != user.generation:
        return None
    return str(data.get("d") or "") or None


def remember_device(request: Request, response, user: User, device: str | None) -> None:
    """Set (or renew, keeping its nonce and so its failures) the device cookie for ``user``."""
    console = request.app.state.console
    web = console.config.web
    value = console.signer.dumps({"u": user.name, "g": user.generation, "d": device or secrets.token_urlsafe(16)},
                                 salt=_DEVICE_SALT)
    response.set_cookie(DEVICE_COOKIE, value, max_age=int(web.login_device_days * 86400), httponly=True,
                        samesite="strict", secure=web.https, path="/login")


# -- auditing refusals ------------------------------------------------------------------------
class Refusals:
    """The throttled attempts of one console process, audited through a refusal ledger."""

    def __init__(self, db):
        self.db = db
        self.ledger = RefusalLedger(self._write_count, per_minute=1)

    def refused(self, attempt: Attempt, user: User | None, reason: str = TOO_MANY_FAILURES, **detail) -> None:
        """Audit a refused attempt (naming the account only if it exists), or count it."""
        if self.ledger.one_by_one(LOGIN_FAILED, attempt.client, reason=reason, **detail):
            audit.record_alone(self.db, LOGIN_FAILED, actor="web", user=user.name if user else None,
                               client=attempt.client, reason=reason, **detail)

    def _write_count(self, event: str, detail: dict) -> None:
        detail = dict(detail)
        audit.record_alone(self.db, event, actor="web", client=detail.pop("address"), **detail)

    def flush(self) -> None:
        """Write the counts still held (the console stops)."""
        self.ledger.flush()
