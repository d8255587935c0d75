"""Signing in to the console through the hospital's identity provider (``web.oidc``).

``GET /login/sso`` sends the browser to the provider with a fresh state, nonce and PKCE
verifier, kept in a signed cookie for ten minutes (SameSite=Lax: the provider's redirect back
is a navigation from another site, which a Strict cookie would not follow). The provider sends
it back to ``/login/sso/callback``; the code is redeemed, the ID token checked
(:mod:`gateway.web.oidc`), and the user's groups mapped to a console role by ``web.oidc.roles``.
A user whose groups grant no role is refused. The session is the console's own signed cookie,
marked as a sign-on: it carries the role the provider's groups granted, lasts
``web.session_hours`` (a change of groups at the provider takes effect at the next sign-in), and
is void once ``web.oidc`` is switched off. Users signed on appear as ``sso:<name>`` in the audit
trail, apart from the console's local accounts.

The session cookie is SameSite=Strict, and a browser does not send it on a navigation that a
redirect from another site started; so the callback answers with a page that moves on by
itself (a meta refresh, a link besides) rather than with a redirect.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from itsdangerous import BadSignature

from gateway.audit import events as audit
from gateway.web import auth, throttle
from gateway.web.auth import client_address
from gateway.web.layout import render
from gateway.web.oidc import NO_NAME, PROVIDER_REFUSED, SignInFailed
from gateway.web.users import ROLES, User

router = APIRouter()

SSO_COOKIE = "deid_sso"
_SALT = "sso"
PENDING_SECONDS = 600
NO_ROLE = "no console role for this account"
EXPIRED = "sign-in expired or not started here"
MAX_NAME = 128


def role_for(claims: dict, oidc) -> str | None:
    """The highest console role the token's groups grant, if any."""
    groups = claims.get(oidc.groups_claim) or []
    groups = {groups} if isinstance(groups, str) else {g for g in groups if isinstance(g, str)}
    granted = [role for role in ROLES if groups & set(oidc.roles.get(role, []))]
    return granted[-1] if granted else None


@router.get("/login/sso")
def start(request: Request, next: str = "/"):  # noqa: A002
    console = request.app.state.console
    state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
    try:
        url = request.app.state.sso.authorization_url(state, nonce, verifier)
    except SignInFailed as exc:
        return _refused(request, exc.reason, None, 502)
    response = RedirectResponse(url, status_code=303)
    pending = console.signer.dumps({"s": state, "n": nonce, "v": verifier, "next": auth.safe_next(next)}, salt=_SALT)
    response.set_cookie(SSO_COOKIE, pending, max_age=PENDING_SECONDS, httponly=True, samesite="lax",
                        secure=console.config.web.https, path="/login/sso")
    return response


@router.get("/login/sso/callback")
def callback(request: Request, code: str = "", state: str = "", error: str = ""):
    """Steps: 1. the pending sign-in of this browser; 2. the provider's answer; 3. the ID token;
    4. the role its groups grant; 5. the session."""
    pending = _pending(request, state)
    if pending is None:
        return _refused(request, EXPIRED, None, 400)
    if error or not code:
        return _refused(request, PROVIDER_REFUSED, None, 401)
    web = request.app.state.console.config.web
    try:
        provider = request.app.state.sso
        claims = provider.identity(provider.redeem(code, pending["v"]), pending["n"])
    except SignInFailed as exc:
        return _refused(request, exc.reason, None, 401)
    name = claims.get(web.oidc.name_claim)
    if not isinstance(name, str) or not name or len(name) > MAX_NAME or not name.isprintable():
        return _refused(request, NO_NAME, None, 401)
    role = role_for(claims, web.oidc)
    if role is None:
        return _refused(request, NO_ROLE, name, 403)
    user = User(name, role, generation=0, sso=True)
    with request.app.state.console.db.session() as session:
        audit.record(session, auth.LOGIN, actor=auth.actor_for(user), role=role, client=client_address(request),
                     via="sso")
    response = render(request, "signed_in.html", None, title="Signed in", next=pending["next"])
    auth.open_session(request, response, user)
    response.delete_cookie(SSO_COOKIE, path="/login/sso")
    return response


def _pending(request: Request, state: str) -> dict | None:
    """The pending sign-in this browser started, if its state is the one the provider returned."""
    console = request.app.state.console
    raw = request.cookies.get(SSO_COOKIE)
    if not raw or not state:
        return None
    try:
        pending = console.signer.loads(raw, salt=_SALT, max_age=PENDING_SECONDS)
    except BadSignature:
        return None
    if not isinstance(pending, dict) or not secrets.compare_digest(str(pending.get("s", "")), state):
        return None
    return pending


def _refused(request: Request, reason: str, name: str | None, status_code: int):
    """Audit a failed sign-in and say so; ``reason`` is from the fixed vocabulary. Before the
    provider vouched for someone, anyone can call this as often as they like, so those
    failures go through the login refusals' ledger (one row a minute per address, the rest
    counted); a user the provider vouched for but who has no role is audited by name."""
    console = request.app.state.console
    client = client_address(request)
    if name is None:
        console.login_refusals.refused(throttle.Attempt("", client), None, reason=reason, via="sso")
    else:
        with console.db.session() as session:
            audit.record(session, throttle.LOGIN_FAILED, actor="web", user=f"sso:{name}", client=client,
                         reason=reason, via="sso")
    return render(request, "message.html", None, title="Not signed in", status_code=status_code,
                  message=f"Not signed in: {reason}.", back="/login")
