"""Logging in and out, and the admin's page of accounts. Every login, failed login, logout and
account change is audited with the user's name (a failed login names the account only if it
exists: a mistyped name may be someone's password)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse

from gateway.audit import events as audit
from gateway.web import auth, throttle
from gateway.web.auth import ADMIN, Visitor, acting, administering
from gateway.web.layout import render
from gateway.web.users import ROLES, UserError

router = APIRouter()


def _form(request: Request, error: str | None, next_: str, status_code: int = 200):
    nonce, token = auth.login_token(request)
    oidc = request.app.state.console.config.web.oidc
    response = render(request, "login.html", None, title="Log in to the gateway console",
                      error=error, next=auth.safe_next(next_), token=token, status_code=status_code,
                      sso_label=oidc.label if oidc.enabled else None)
    auth.set_login_cookie(request, response, nonce)
    return response


@router.get("/login")
def login_form(request: Request, next: str = "/"):  # noqa: A002
    return _form(request, None, next)


@router.post("/login")
def login(request: Request, username: str = Form(""), password: str = Form(""), token: str = Form(""),
          next: str = Form("/")):  # noqa: A002
    console = request.app.state.console
    if not auth.login_token_ok(request, token):
        return _form(request, "The form has expired. Please try again.", next, 400)
    account = console.users.get(username)
    attempt = throttle.Attempt(username, auth.client_address(request), throttle.device_of(request, account))
    with console.db.reading() as session:
        blocked = throttle.throttled(session, console.config.web, attempt)
    if blocked:
        console.login_refusals.refused(attempt, account)
        return _form(request, "Too many failed logins. Wait a while before trying again.", next, 429)
    user = console.users.verify(username, password)
    with console.db.session() as session:
        if user is None:
            audit.record(session, throttle.LOGIN_FAILED, actor="web", user=account.name if account else None,
                         client=attempt.client, reason=throttle.WRONG_PASSWORD,
                         **({"device": attempt.device} if attempt.device else {}))
        else:
            audit.record(session, auth.LOGIN, actor=auth.actor_for(user), role=user.role, client=attempt.client)
    if user is None:
        return _form(request, "Wrong user name or password.", next, 401)
    response = RedirectResponse(auth.safe_next(next), status_code=303)
    auth.open_session(request, response, user)
    throttle.remember_device(request, response, user, attempt.device if user == account else None)
    response.delete_cookie(auth.LOGIN_COOKIE, path="/")
    return response


@router.post("/logout")
def logout(request: Request, who: Visitor = Depends(acting("viewer"))):
    with request.app.state.console.db.session() as session:
        audit.record(session, auth.LOGOUT, actor=who.actor)
    response = RedirectResponse("/login", status_code=303)
    auth.close_session(request, response)
    return response


@router.get("/users")
def users_page(request: Request, who: Visitor = Depends(administering)):
    return render(request, "users.html", who, title="Users", users=request.app.state.console.users.names(),
                  roles=ROLES)


@router.post("/users")
def save_user(request: Request, username: str = Form(...), role: str = Form(...), password: str = Form(""),
              who: Visitor = Depends(acting(ADMIN))):
    console = request.app.state.console
    try:
        console.users.put(username, role=role, password=password or None)
    except UserError as exc:
        return render(request, "message.html", who, title="Not saved", message=str(exc), back="/users",
                      status_code=422)
    with console.db.session() as session:
        audit.record(session, auth.USERS_CHANGED, actor=who.actor, user=username, role=role,
                     password_set=bool(password))
    return RedirectResponse("/users?done=user_saved", status_code=303)


@router.post("/users/remove")
def remove_user(request: Request, username: str = Form(...), who: Visitor = Depends(acting(ADMIN))):
    console = request.app.state.console
    if username != who.user.name and console.users.remove(username):
        with console.db.session() as session:
            audit.record(session, auth.USERS_CHANGED, actor=who.actor, user=username, removed=True)
    return RedirectResponse("/users?done=user_removed", status_code=303)
