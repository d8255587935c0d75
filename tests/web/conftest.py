"""Fixtures of the console's tests: a database with users, an in-process client, and a real
browser (Debian's chromium driven by Playwright; never a downloaded browser)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gateway.config import load_config
from gateway.db import Database
from gateway.web.app import create_app
from gateway.web.users import UserStore

CHROMIUM = os.environ.get("DEID_GATEWAY_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
PASSWORDS = {"vera": "viewer-password-1", "otto": "operator-password-1", "ada": "admin-password-12"}
ROLES = {"vera": "viewer", "otto": "operator", "ada": "admin"}


@pytest.fixture
def console(tmp_path):
    """A console over an empty gateway, with one user of each role."""
    root = tmp_path / "var"
    config = load_config(None, {"storage": {"root": str(root)},
                                "database": {"url": f"sqlite:///{tmp_path / 'gateway.db'}"},
                                "egress": {"destinations": [
                                    {"name": "archive", "ae_title": "ARCHIVE", "host": "127.0.0.1", "port": 1},
                                    {"name": "second", "ae_title": "SECOND", "host": "127.0.0.1", "port": 2}]}})
    for folder in (config.storage.spool, config.storage.outbox, config.storage.quarantine):
        folder.mkdir(parents=True, exist_ok=True)
    db = Database(config.database.url)
    db.create_schema()
    users = UserStore(config.web.users_path(root))
    for name, password in PASSWORDS.items():
        users.put(name, role=ROLES[name], password=password)
    return config, db, users


def client_for(console, name: str | None = None) -> TestClient:
    """A client of the console, logged in as ``name`` when given."""
    config, db, users = console
    client = TestClient(create_app(config, db, b"test-secret", users), base_url="http://127.0.0.1")
    if name:
        response = login(client, name, PASSWORDS[name])
        assert response.status_code == 303, response.text
    return client


def login(client: TestClient, name: str, password: str, next_: str = "/"):
    form = client.get("/login").text
    token = re.search(r'name="token" value="([^"]+)"', form).group(1)
    return client.post("/login", data={"username": name, "password": password, "token": token, "next": next_},
                       follow_redirects=False)


def csrf_of(client: TestClient, page: str = "/quarantine") -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(page).text).group(1)


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> Path:
    """Where screenshots are kept: $DEID_GATEWAY_ARTIFACTS, else a folder of pytest's base
    temporary directory (kept for the last three runs)."""
    folder = Path(os.environ.get("DEID_GATEWAY_ARTIFACTS") or tmp_path_factory.getbasetemp() / "web-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (deploy/setup.sh --test installs it as root)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()
