"""Signing on to the console through an OpenID Connect provider (gateway.web.sso, oidc): a real
provider over HTTPS on loopback (tests.web.oidc_provider), the console in process."""

from __future__ import annotations

import re
import ssl
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from gateway.audit.tables import AuditEvent
from gateway.config import ConfigError, load_config
from gateway.db import Database
from gateway.web.app import create_app
from gateway.web.server import check_exposure
from gateway.web.users import UserStore
from tests.ingest.tls_pki import make_ingest_pki
from tests.web.conftest import PASSWORDS, client_for, csrf_of, login
from tests.web.helpers import in_thread
from tests.web.oidc_provider import CLIENT_ID, FAULTS, OidcProvider, write_secret

REDIRECT = "https://console.hospital.test/login/sso/callback"
ROLES = {"admin": ["radiology-it"], "operator": ["pacs-team"], "viewer": ["research-curators", "pacs-team"]}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_ingest_pki(tmp_path_factory.mktemp("oidc-pki"))


@pytest.fixture
def provider(pki):
    with OidcProvider(pki, REDIRECT).serving() as running:
        yield running


def oidc_settings(provider, tmp_path, **changes) -> dict:
    return {"enabled": True, "issuer": provider.issuer, "client_id": CLIENT_ID,
            "client_secret_file": str(write_secret(tmp_path)), "redirect_url": REDIRECT,
            "ca_file": str(provider.pki.ca), "roles": ROLES, **changes}


@pytest.fixture
def site(provider, tmp_path):
    """A console signing users on through ``provider``, with the local accounts of the other tests."""
    config = load_config(None, {"storage": {"root": str(tmp_path / "var")},
                                "database": {"url": f"sqlite:///{tmp_path / 'gateway.db'}"},
                                "web": {"oidc": oidc_settings(provider, tmp_path)}})
    db = Database(config.database.url)
    db.create_schema()
    users = UserStore(config.web.users_path(config.storage.root))
    for name, password in PASSWORDS.items():
        users.put(name, role={"vera": "viewer", "otto": "operator", "ada": "admin"}[name], password=password)
    return config, db, users


def browser(site) -> TestClient:
    config, db, users = site
    return TestClient(create_app(config, db, b"test-secret", users), base_url="http://127.0.0.1")


def at_provider(provider: OidcProvider, url: str) -> httpx.Response:
    """The user at the provider's sign-in page (its own TLS), submitting it: its redirect back."""
    with httpx.Client(verify=ssl.create_default_context(cafile=str(provider.pki.ca))) as outside:
        page = outside.get(url)
        ticket = re.search(r'name="ticket" value="([^"]+)"', page.text).group(1)
        back = outside.get(f"{provider.issuer}/authorize/done", params={"ticket": ticket}, follow_redirects=False)
    assert back.status_code == 303, back.text
    return back


def sign_on(client: TestClient, provider: OidcProvider, state: str | None = None):
    """The browser's round trip: the console, the provider (its own TLS), back to the console."""
    to_provider = client.get("/login/sso?next=/studies", follow_redirects=False)
    assert to_provider.status_code == 303
    back = at_provider(provider, to_provider.headers["location"])
    url = urlsplit(back.headers["location"])
    query = url.query if state is None else url.query.rsplit("state=", 1)[0] + f"state={state}"
    return client.get(f"{url.path}?{query}", follow_redirects=False)


def audited(db, event: str) -> list[tuple[str, dict]]:
    with db.reading() as session:
        return [(e.actor, e.detail) for e in session.scalars(select(AuditEvent).where(AuditEvent.event == event))]


def test_a_user_of_a_mapped_group_signs_on_with_the_highest_role_her_groups_grant(site, provider):
    provider.user = {"preferred_username": "jane.doe", "groups": ["research-curators", "pacs-team"]}
    client = browser(site)
    assert "Sign in with the hospital" in client.get("/login").text
    answer = sign_on(client, provider)
    assert answer.status_code == 200 and 'content="0; url=/studies"' in answer.text
    assert client.get("/studies").status_code == 200
    assert client.get("/users").status_code == 403  # an operator, not an admin
    operator_only = client.post("/studies/1/retry", data={"csrf": csrf_of(client, "/studies")})
    assert operator_only.status_code == 404  # allowed; there is no study 1
    assert audited(site[1], "login") == [("sso:jane.doe", {"role": "operator", "client": "testclient", "via": "sso"})]


def test_a_key_the_provider_rotated_in_is_fetched_when_a_token_names_it(site, provider, monkeypatch):
    from joserfc.jwk import RSAKey

    from gateway.web import oidc

    first = browser(site)
    assert sign_on(first, provider).status_code == 200
    provider.key = RSAKey.generate_key(2048, parameters={"kid": "key-2", "use": "sig", "alg": "RS256"})
    second = TestClient(first.app, base_url="http://127.0.0.1")  # the same console, another browser
    assert sign_on(second, provider).status_code == 401  # keys are fetched again at most once a minute
    monkeypatch.setattr(oidc, "KEYS_REFETCH_SECONDS", 0.0)
    assert sign_on(second, provider).status_code == 200


def test_a_user_whose_groups_grant_no_role_is_refused_and_audited_by_name(site, provider):
    provider.user = {"preferred_username": "sam.smith", "groups": ["cardiology"]}
    client = browser(site)
    answer = sign_on(client, provider)
    assert answer.status_code == 403 and "no console role" in answer.text
    assert client.get("/studies", follow_redirects=False).status_code == 303
    assert audited(site[1], "login_failed")[-1][1] == {
        "user": "sso:sam.smith", "client": "testclient", "reason": "no console role for this account", "via": "sso"}


@pytest.mark.parametrize("fault", FAULTS)
def test_an_id_token_that_does_not_hold_is_refused(site, provider, fault):
    provider.fault = fault
    client = browser(site)
    answer = sign_on(client, provider)
    assert answer.status_code == 401 and "identity token not valid" in answer.text
    assert client.get("/studies", follow_redirects=False).status_code == 303
    assert audited(site[1], "login") == []


def test_a_callback_this_browser_did_not_start_is_refused_before_the_provider_is_asked(site, provider):
    started = browser(site)
    other = browser(site)  # an attacker's link: another browser's code and state
    to_provider = started.get("/login/sso", follow_redirects=False)
    back = urlsplit(at_provider(provider, to_provider.headers["location"]).headers["location"])
    assert other.get(f"{back.path}?{back.query}").status_code == 400
    assert sign_on(browser(site), provider, state="forged").status_code == 400
    assert provider.token_requests == 0
    rows = audited(site[1], "login_failed")
    assert rows[-1][1] == {"user": None, "client": "testclient", "reason": "sign-in expired or not started here",
                           "via": "sso"}
    for _ in range(30):  # anyone may call it: the refusals are counted, not a row each
        other.get("/login/sso/callback?code=x&state=y")
    assert audited(site[1], "login_failed") == rows
    other.app.state.console.login_refusals.flush()  # as the console stops
    assert audited(site[1], "login_failed")[-1][1]["refusals"] == 30


def test_signed_on_sessions_are_apart_from_local_accounts_and_end_when_sign_on_is_switched_off(site, provider, tmp_path):
    provider.user = {"preferred_username": "ada", "groups": ["research-curators"]}  # a local admin's name
    client = browser(site)
    sign_on(client, provider)
    assert client.get("/users").status_code == 403  # a viewer: the local account "ada" is someone else
    assert login(client_for(site), "ada", PASSWORDS["ada"]).status_code == 303  # the local account still works
    config, db, users = site
    off = config.model_copy(update={"web": config.web.model_copy(update={"oidc": config.web.oidc.model_copy(
        update={"enabled": False})})})
    later = TestClient(create_app(off, db, b"test-secret", users), base_url="http://127.0.0.1")
    later.cookies = client.cookies
    assert later.get("/studies", follow_redirects=False).status_code == 303
    assert later.get("/login/sso").status_code == 404


def test_sign_on_settings_are_checked_at_start(provider, tmp_path):
    good = oidc_settings(provider, tmp_path)
    for bad, message in ((dict(issuer="http://idp.hospital.test"), "https"), (dict(roles={}), "map at least one"),
                         (dict(roles={"root": ["x"]}), "roles are viewer"),
                         (dict(client_secret_file=None), "exactly one of")):
        with pytest.raises(ConfigError, match=message):
            load_config(None, {"storage": {"root": str(tmp_path)}, "web": {"oidc": {**good, **bad}}})
    config = load_config(None, {"storage": {"root": str(tmp_path)}, "web": {"oidc": good}})
    check_exposure(config.web, UserStore(tmp_path / "none.json"))  # no local accounts needed
    (tmp_path / "oidc-client-secret").chmod(0o644)
    with pytest.raises(ConfigError, match="group or others"):
        create_app(config, Database(f"sqlite:///{tmp_path / 'g.db'}"), b"s", UserStore(tmp_path / "none.json"))


@pytest.fixture
def served_console(pki, tmp_path):
    """The console over HTTPS on 127.0.0.1, the provider on localhost: two sites, as in a
    hospital, so the browser treats the provider's redirect back as coming from elsewhere."""
    from gateway.web.server import make_server
    from tests.peers import free_port

    port = free_port()
    provider = OidcProvider(pki, f"https://127.0.0.1:{port}/login/sso/callback")
    config = load_config(None, {"storage": {"root": str(tmp_path / "var")},
                                "database": {"url": f"sqlite:///{tmp_path / 'gateway.db'}"},
                                "web": {"host": "127.0.0.1", "port": port, "tls_cert_file": str(pki.gateway.cert),
                                        "tls_key_file": str(pki.gateway.key),
                                        "oidc": {**oidc_settings(provider, tmp_path),
                                                 "redirect_url": provider.redirect_url}}})
    db = Database(config.database.url)
    db.create_schema()
    with provider.serving(), in_thread(make_server(config, db, b"test-secret"), "the console"):
        yield f"https://127.0.0.1:{port}", provider


def test_a_browser_signs_on_and_lands_on_the_page_it_asked_for(browser, served_console, artifacts):
    base, provider = served_console
    provider.user = {"preferred_username": "jane.doe", "groups": ["pacs-team"]}
    context = browser.new_context(base_url=base, ignore_https_errors=True)
    page = context.new_page()
    page.goto("/studies")
    assert "/login" in page.url
    page.get_by_role("link", name="Sign in with the hospital's account").click()
    page.get_by_role("button", name="Sign in as jane.doe").click()  # on the provider's own page
    page.wait_for_url(base + "/studies")
    assert page.get_by_role("heading", name="Studies").is_visible()
    assert "jane.doe (operator)" in page.content()
    page.screenshot(path=str(artifacts / "signed-on.png"), full_page=True)
    context.close()


def test_a_provider_that_does_not_answer_is_said_without_detail(pki, tmp_path):
    from tests.peers import free_port

    gone = OidcProvider(pki, REDIRECT)  # never started
    gone.port = free_port()
    config = load_config(None, {"storage": {"root": str(tmp_path / "var")},
                                "database": {"url": f"sqlite:///{tmp_path / 'gateway.db'}"},
                                "web": {"oidc": oidc_settings(gone, tmp_path)}})
    db = Database(config.database.url)
    db.create_schema()
    client = TestClient(create_app(config, db, b"test-secret", UserStore(tmp_path / "none.json")),
                        base_url="http://127.0.0.1")
    answer = client.get("/login/sso", follow_redirects=False)
    assert answer.status_code == 502 and "Not signed in: identity provider unreachable." in answer.text
    assert str(gone.port) not in answer.text
    assert audited(db, "login_failed")[-1][1] == {"user": None, "client": "testclient",
                                                  "reason": "identity provider unreachable", "via": "sso"}
