"""For tests elsewhere that open the console of a gateway process: an account, a login."""

from __future__ import annotations

import re
import subprocess
import sys

import httpx


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
