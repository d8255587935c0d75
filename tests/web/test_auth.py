"""Logging in, roles, CSRF, throttling, and when the console refuses to start."""

from __future__ import annotations

import os
import stat
import threading
import time

import pytest
from sqlalchemy import select

from gateway.audit.tables import AuditEvent
from gateway.config import ConfigError, load_config
from gateway.web.server import check_exposure
from gateway.web.users import UserError, UserStore
from tests.web.conftest import PASSWORDS, client_for, csrf_of, login


def _events(db, kind):
    with db.reading() as session:
        return [(e.actor, e.detail) for e in session.scalars(select(AuditEvent).where(AuditEvent.event == kind))]


def test_pages_need_a_login_and_a_login_is_audited(console):
    client = client_for(console)
    response = client.get("/studies?state=done", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/studies%3Fstate%3Ddone"
    assert client.post("/quarantine/1/release", data={"csrf": "x"}).status_code == 401

    response = login(client, "vera", PASSWORDS["vera"], next_="/studies")
    assert response.status_code == 303 and response.headers["location"] == "/studies"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert client.get("/studies").status_code == 200
    assert _events(console[1], "login") == [("web:vera", {"role": "viewer", "client": "testclient"})]


def test_a_wrong_password_is_refused_audited_and_throttled(console):
    client = client_for(console)
    for _ in range(5):
        assert login(client, "otto", "not-the-password").status_code == 401
    # The sixth attempt is refused even with the right password, until the window passes.
    response = login(client, "otto", PASSWORDS["otto"])
    assert response.status_code == 429 and "Too many failed logins" in response.text
    failed = _events(console[1], "login_failed")
    assert len(failed) == 6 and all(detail["user"] == "otto" for _, detail in failed)
    # A name that is no account is not written down (it may be a password typed in the wrong box).
    login(client, "otto-password-typo", "x")
    assert _events(console[1], "login_failed")[-1][1]["user"] is None


def test_a_client_that_keeps_trying_while_throttled_is_audited_once_a_minute_and_counted(console):
    client = client_for(console)
    for _ in range(5):
        login(client, "otto", "not-the-password")
    for _ in range(20):  # a script hammering the form: each row would slow every later check
        assert login(client, "otto", "still-not-it").status_code == 429
    failed = [detail["reason"] for _, detail in _events(console[1], "login_failed")]
    assert failed == ["wrong user name or password"] * 5 + ["too many failures"]
    client.app.state.console.login_refusals.flush()  # as the console stops
    assert _events(console[1], "login_failed")[-1][1] == {"client": "testclient", "reason": "too many failures",
                                                         "refusals": 19}


def test_a_flood_that_locks_an_account_does_not_lock_her_out_of_her_own_browser(console):
    mine = client_for(console, "otto")  # she logged in from this browser before
    device = mine.cookies.get("deid_device")
    assert device and device not in {c.value for c in mine.cookies.jar if c.path != "/login"}
    mine.post("/logout", data={"csrf": csrf_of(mine, "/studies")})
    attacker = client_for(console)
    for n in range(60):  # her name, wrong passwords: her account and everyone's attempts are locked
        login(attacker, "otto", f"guess-{n}")
        login(attacker, f"nobody-{n}", "guess")
    assert login(client_for(console), "otto", PASSWORDS["otto"]).status_code == 429  # a new browser waits
    assert login(mine, "otto", PASSWORDS["otto"]).status_code == 303
    assert mine.get("/studies").status_code == 200
    assert mine.cookies.get("deid_device") != device  # renewed, with the same nonce inside


def browser_with(console, device: str):
    client = client_for(console)
    client.cookies.set("deid_device", device, path="/login")
    return client


def test_a_device_cookie_counts_only_for_its_own_account_and_password_and_its_own_failures(console):
    device = client_for(console, "otto").cookies.get("deid_device")
    veras = client_for(console, "vera").cookies.get("deid_device")
    not_a_session = client_for(console)
    not_a_session.cookies.set("deid_session", device)
    assert not_a_session.get("/studies", follow_redirects=False).status_code == 303
    attacker = client_for(console)
    for n in range(50):  # everyone's attempts are locked
        login(attacker, f"nobody-{n}", "guess")
    assert login(browser_with(console, device), "vera", PASSWORDS["vera"]).status_code == 429  # otto's browser
    thief = browser_with(console, device)  # otto's browser, taken: a few guesses, then its own failures lock it
    for n in range(5):
        assert login(thief, "otto", f"guess-{n}").status_code == 401
    assert login(thief, "otto", PASSWORDS["otto"]).status_code == 429
    console[2].put("otto", password="a-brand-new-password")  # a new password makes every browser new
    assert login(browser_with(console, device), "otto", "a-brand-new-password").status_code == 429
    assert login(browser_with(console, veras), "vera", PASSWORDS["vera"]).status_code == 303  # others' stay


def test_a_login_needs_the_form_the_console_handed_out(console):
    client = client_for(console)
    response = client.post("/login", data={"username": "vera", "password": PASSWORDS["vera"], "token": "forged"})
    assert response.status_code == 400
    assert login(client, "vera", PASSWORDS["vera"], next_="https://elsewhere.example/").headers["location"] == "/"


def test_roles_and_csrf_guard_every_action(console):
    viewer, operator = client_for(console, "vera"), client_for(console, "otto")
    assert "Release" not in viewer.get("/quarantine").text
    token = csrf_of(viewer, "/studies")
    assert viewer.post("/studies/1/retry", data={"csrf": token}).status_code == 403
    assert viewer.get("/users").status_code == 403
    # The operator's own action, without the token or with another session's, is refused.
    assert operator.post("/studies/1/retry", data={}).status_code == 403
    assert operator.post("/studies/1/retry", data={"csrf": token}).status_code == 403
    good = csrf_of(operator, "/studies")
    assert operator.post("/studies/1/retry", data={"csrf": good},
                         headers={"origin": "https://evil.example"}).status_code == 403
    assert operator.post("/studies/999/retry", data={"csrf": good}).status_code == 404


def test_a_new_password_ends_the_sessions_of_the_account(console):
    client = client_for(console, "vera")
    assert client.get("/studies").status_code == 200
    console[2].put("vera", password="a-brand-new-password")
    assert client.get("/studies", follow_redirects=False).status_code == 303


def test_the_admin_manages_accounts(console):
    admin = client_for(console, "ada")
    token = csrf_of(admin, "/users")
    assert admin.post("/users", data={"csrf": token, "username": "newbie", "role": "viewer",
                                      "password": "short"}).status_code == 422
    response = admin.post("/users", data={"csrf": token, "username": "newbie", "role": "operator",
                                          "password": "long-enough-password"}, follow_redirects=False)
    assert response.status_code == 303 and console[2].get("newbie").role == "operator"
    admin.post("/users/remove", data={"csrf": token, "username": "newbie"})
    assert console[2].get("newbie") is None
    assert [d.get("user") for _, d in _events(console[1], "users_changed")] == ["newbie", "newbie"]


def test_the_users_file_is_private_and_rejects_weak_entries(tmp_path):
    store = UserStore(tmp_path / "web" / "users.json")
    store.put("alice", role="admin", password="a-long-password")
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert "a-long-password" not in store.path.read_text() and "$argon2" in store.path.read_text()
    assert store.verify("alice", "a-long-password").role == "admin"
    assert store.verify("alice", "wrong") is None and store.verify("bob", "whatever") is None
    for bad in (dict(name="Alice!", role="admin", password="a-long-password"),
                dict(name="bob", role="root", password="a-long-password"),
                dict(name="bob", role="viewer", password="short")):
        with pytest.raises(UserError):
            store.put(bad["name"], role=bad["role"], password=bad["password"])
    os.chmod(store.path, 0o644)
    with pytest.raises(ConfigError):
        UserStore(store.path).names()


def test_an_unknown_name_costs_a_hash_that_is_made_with_the_store_not_on_import():
    """Every command of the CLI imports the users module to build its parser; a hash on import
    cost each of them (and each process ``serve`` starts) 0.1 s of CPU and 64 MiB."""
    import subprocess
    import sys

    code = ("import gateway.cli, gateway.web.users as u; gateway.cli.build_parser(); "
            "print(u._dummy.cache_info().currsize)")
    made = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert made.strip() == "0"
    code = "import gateway.web.users as u; u.UserStore('nowhere.json'); print(u._dummy.cache_info().currsize)"
    made = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert made.strip() == "1"


@pytest.mark.parametrize("web, refused", [
    ({"host": "0.0.0.0"}, "not a loopback address"),
    ({"host": "10.1.2.3", "behind_proxy": True}, None),
    ({"host": "127.0.0.1"}, None),
    ({"host": "::1"}, None),
])
def test_the_console_refuses_to_start_exposed_or_without_accounts(tmp_path, web, refused):
    config = load_config(None, {"web": web, "storage": {"root": str(tmp_path)}})
    empty = UserStore(tmp_path / "none.json")
    with pytest.raises(ConfigError, match=refused or "no accounts"):
        check_exposure(config.web, empty)
    users = UserStore(tmp_path / "users.json")
    users.put("root", role="admin", password="a-long-password")
    if refused:
        with pytest.raises(ConfigError, match=refused):
            check_exposure(config.web, users)
    else:
        check_exposure(config.web, users)


def test_serve_stops_with_a_message_when_the_console_may_not_start(tmp_path, capsys):
    from gateway.cli import main

    (tmp_path / "c.yaml").write_text(
        f"storage: {{root: {tmp_path}}}\ndatabase: {{url: 'sqlite:///{tmp_path}/g.db'}}\n"
        "web: {enabled: true, host: 0.0.0.0}\n")
    assert main(["web", "--config", str(tmp_path / "c.yaml")]) == 2
    assert "not a loopback address" in capsys.readouterr().err


class BlockingHasher:
    """A password hasher that holds every check until released, counting those inside it."""

    def __init__(self):
        self.release, self.inside, self.lock = threading.Event(), 0, threading.Lock()

    def verify(self, password, hash_):
        with self.lock:
            self.inside += 1
        self.release.wait(10)
        return False

    def verify_and_update(self, password, hash_):
        return self.verify(password, hash_), None


def test_checking_passwords_never_makes_a_page_wait_and_holds_two_hashes_at_most(tmp_path, monkeypatch):
    """Every page's session check reads the users file through the store's lock; a flood of
    logins held it for 0.1 s of argon2 each, so pages waited behind the whole flood."""
    from gateway.web import users as users_module

    store = UserStore(tmp_path / "users.json")
    store.put("vera", role="viewer", password=PASSWORDS["vera"])
    hasher = BlockingHasher()
    monkeypatch.setattr(users_module, "_hasher", hasher)
    checks = [threading.Thread(target=store.verify, args=(name, "guess")) for name in ("vera", "nobody", "vera")]
    for check in checks:
        check.start()
    page = threading.Thread(target=store.get, args=("vera",))
    page.start()
    page.join(5)
    try:
        assert not page.is_alive()
        assert hasher.inside == users_module.HASHES_AT_ONCE == 2
    finally:
        hasher.release.set()
        for check in checks:
            check.join(10)
    assert hasher.inside == 3


def test_a_console_reached_over_https_tells_browsers_to_keep_to_it(console):
    config, db, users = console
    assert "strict-transport-security" not in client_for(console).get("/login").headers  # plain, on loopback
    behind = config.model_copy(update={"web": config.web.model_copy(update={"behind_proxy": True})})
    answer = client_for((behind, db, users)).get("/login")
    assert answer.headers["strict-transport-security"] == "max-age=31536000"


REAL_TIME = time.time


def at(monkeypatch, seconds_from_now: float) -> None:
    """Let the console (and its cookies' signatures) live ``seconds_from_now`` from now."""
    now = REAL_TIME()
    monkeypatch.setattr(time, "time", lambda: now + seconds_from_now)


def test_a_session_left_idle_ends_and_one_in_use_is_renewed(console, monkeypatch):
    at(monkeypatch, -31 * 60)  # logged in, then left for 31 minutes
    idle = client_for(console, "vera")
    monkeypatch.undo()
    assert idle.get("/studies", follow_redirects=False).status_code == 303
    at(monkeypatch, -29 * 60)  # the last request 29 minutes ago
    busy = client_for(console, "vera")
    monkeypatch.undo()
    before = busy.cookies.get("deid_session")
    answer = busy.get("/studies")
    assert answer.status_code == 200 and busy.cookies.get("deid_session") != before  # signed again: now
    at(monkeypatch, 29 * 60)  # 29 minutes after that request, still alive
    assert busy.get("/studies", follow_redirects=False).status_code == 200


def test_a_session_in_use_still_ends_after_session_hours(console, monkeypatch):
    client = client_for(console, "vera")
    for minutes in range(20, 8 * 60, 20):  # in use all day, a page every 20 minutes
        at(monkeypatch, minutes * 60)
        assert client.get("/studies", follow_redirects=False).status_code == 200
    at(monkeypatch, 8.1 * 3600)
    assert client.get("/studies", follow_redirects=False).status_code == 303
