"""Who is asking: signed session cookies, roles and CSRF tokens (login throttling: :mod:`throttle`).

A session is a cookie signed with a key derived from the gateway's secret (itsdangerous),
holding the user's name, their account's generation and a CSRF token: no server-side store,
so the console can run in several processes. Every state-changing request is a POST whose form
carries that token, from the console's own origin; the cookie is HttpOnly and SameSite=Strict.
A session ends after ``web.idle_minutes`` without a request (each request signs it again, so
the idle time counts from the last) and ``web.session_hours`` after it was opened, whichever
comes first: the automatic logoff a clinical system's policy asks for. A session opened by
single sign-on (:mod:`sso`) carries, instead of an account's generation, the role the identity
provider's groups granted, and holds only while ``web.oidc`` is enabled.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from gateway import keys
from gateway.web.users import ADMIN, OPERATOR, ROLES, VIEWER, User

SESSION_COOKIE = "deid_session"
LOGIN_COOKIE = "deid_login"
LOGIN = "login"
LOGOUT = "logout"
USERS_CHANGED = "users_changed"
SESSION_KEY = b"web-session:"
#: A session in use is signed again at most this often (seconds), which restarts its idle time.
RENEW_AFTER = 60


class NotLoggedIn(Exception):
    """No valid session: pages send the browser to the login form."""


class Forbidden(Exception):
    """Logged in, but the role (or the request's CSRF token or origin) does not allow this."""

    def __init__(self, why: str):
        super().__init__(why)
        self.why = why


@dataclass(frozen=True)
class Visitor:
    """A logged-in user and the CSRF token of their session."""

    user: User
    csrf: str

    @property
    def actor(self) -> str:
        return actor_for(self.user)


def actor_for(user: User) -> str:
    """How a console user appears in the audit trail: ``web:<name>`` for a local account,
    ``sso:<name>`` for one signed on through the identity provider (the two never mix)."""
    return f"{'sso' if user.sso else 'web'}:{user.name}"


def safe_next(target: str) -> str:
    """Only a path on this console: a login must not send anyone elsewhere."""
    parts = urlsplit(target or "/")
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return "/"
    return parts.path + (f"?{parts.query}" if parts.query else "")


def make_signer(secret: bytes) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(keys.keyed_digest(secret, SESSION_KEY, "v1"), salt="deid-console")


def _cookie_args(request: Request) -> dict:
    web = request.app.state.console.config.web
    return {"httponly": True, "samesite": "strict", "secure": web.https, "path": "/"}


def open_session(request: Request, response, user: User) -> None:
    data = {"u": user.name, "g": user.generation, "c": secrets.token_urlsafe(24), "t": int(time.time())}
    if user.sso:  # the role the provider's groups granted, vouched for by the signature
        data.update(sso=True, r=user.role)
    _set_session(request, response, data)


def _set_session(request: Request, response, data: dict) -> None:
    console = request.app.state.console
    response.set_cookie(SESSION_COOKIE, console.signer.dumps(data),
                        max_age=int(console.config.web.session_hours * 3600), **_cookie_args(request))


def close_session(request: Request, response) -> None:
    response.delete_cookie(SESSION_COOKIE, **_cookie_args(request))


def _session(request: Request) -> tuple[dict, float] | None:
    """The session cookie's content and when it was last signed, if it is genuine, was used
    within ``web.idle_minutes`` and opened within ``web.session_hours``."""
    console = request.app.state.console
    web, raw = console.config.web, request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        data, signed = console.signer.loads(raw, max_age=web.idle_minutes * 60, return_timestamp=True)
        opened = float(data["t"])
    except (BadSignature, KeyError, TypeError, ValueError):
        return None
    if time.time() - opened > web.session_hours * 3600:
        return None
    return data, signed.timestamp()


def renew_session(request: Request, response) -> None:
    """Sign a live session again, so that its idle time counts from this request (at most once
    a :data:`RENEW_AFTER`); a response that sets or clears the session itself is left alone."""
    if any(c.startswith(SESSION_COOKIE + "=") for c in response.headers.getlist("set-cookie")):
        return
    found = _session(request)
    if found is not None and time.time() - found[1] >= RENEW_AFTER:
        _set_session(request, response, found[0])


def visitor(request: Request) -> Visitor | None:
    """The session's user, if the session is live (:func:`_session`) and the account unchanged."""
    console = request.app.state.console
    found = _session(request)
    if found is None:
        return None
    data = found[0]
    try:
        if data.get("sso"):
            return _signed_on(console, data)
        user = console.users.get(str(data["u"]))
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    if user is None or user.generation != data.get("g"):
        return None
    return Visitor(user, str(data.get("c", "")))


def _signed_on(console, data: dict) -> Visitor | None:
    """A session the identity provider vouched for, while sign-on is still configured."""
    if not console.config.web.oidc.enabled or data.get("r") not in ROLES:
        return None
    return Visitor(User(str(data["u"]), data["r"], 0, sso=True), str(data.get("c", "")))


def _need(request: Request, role: str) -> Visitor:
    found = visitor(request)
    if found is None:
        raise NotLoggedIn()
    if not found.user.can(role):
        raise Forbidden(f"this needs the {role} role")
    return found


def viewing(request: Request) -> Visitor:
    """Dependency of every page: any logged-in user."""
    return _need(request, VIEWER)


def administering(request: Request) -> Visitor:
    return _need(request, ADMIN)


def acting(role: str = OPERATOR):
    """Dependency of a state-changing POST: the role, the session's CSRF token in the form, and
    (when the browser says where the form came from) the console's own origin."""

    async def dependency(request: Request) -> Visitor:
        found = _need(request, role)
        form = await request.form()
        if not hmac.compare_digest(str(form.get("csrf", "")), found.csrf):
            raise Forbidden("the form has expired; reload the page and try again")
        check_origin(request)
        return found

    return dependency


def check_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise Forbidden("the request did not come from this console")


# -- the login form's own CSRF token (there is no session yet) ---------------------------------
def login_token(request: Request) -> tuple[str, str]:
    """A nonce for a cookie and its signature for the form: a login can only be posted from a
    form this console handed out, to the browser that got it. Returns (nonce, token)."""
    nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(16)
    return nonce, request.app.state.console.signer.dumps(nonce, salt="login")


def set_login_cookie(request: Request, response, nonce: str) -> None:
    response.set_cookie(LOGIN_COOKIE, nonce, max_age=3600, **_cookie_args(request))


def login_token_ok(request: Request, token: str) -> bool:
    nonce = request.cookies.get(LOGIN_COOKIE)
    try:
        signed = request.app.state.console.signer.loads(token, salt="login", max_age=3600)
    except BadSignature:
        return False
    return bool(nonce) and hmac.compare_digest(str(signed), nonce)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


__all__ = ["ADMIN", "OPERATOR", "VIEWER", "Forbidden", "NotLoggedIn", "Visitor"]
