"""For tests elsewhere that open the console of a gateway process: an account, a login."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from contextlib import contextmanager

import httpx

from tests.peers import wait_for


def add_user(gateway, name: str, role: str, password: str) -> None:
    """``deid-gateway users add`` on the gateway's configuration (before or after it starts)."""
    gateway.write_config()
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "users", "add", name, "--role", role, "--password-stdin",
         "--config", str(gateway.config_path)],
        input=password + "\n", capture_output=True, text=True, env=gateway.env(), timeout=60)
    assert done.returncode == 0, done.stderr


def logged_in(base: str, name: str, password: str) -> httpx.Client:
    """An HTTP client holding a session of ``name`` on the console at ``base``."""
    client = httpx.Client(base_url=base, timeout=30)
    token = re.search(r'name="token" value="([^"]+)"', client.get("/login").text).group(1)
    response = client.post("/login", data={"username": name, "password": password, "token": token})
    assert response.status_code == 303, response.status_code
    return client


@contextmanager
def in_thread(server, what: str, graceful: bool = False):
    """A uvicorn ``server`` running in a thread of this process for the block; stopped at once
    after it (a client's idle keep-alive connection would hold a graceful stop), or with
    ``graceful`` as ``deid-gateway serve`` stops the console (its shutdown steps run)."""
    thread = threading.Thread(target=server.run, name=what, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, 20, what=f"{what} to listen")
        yield server
    finally:
        server.should_exit = True
        server.force_exit = not graceful
        thread.join(20)
