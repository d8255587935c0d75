"""A key or credential file the group or others may read stops start-up, with a message that
names the file and never quotes it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from gateway.cli import main
from tests.security.pki import make_pki

CANARY = "Canary-Key-0d1e2f"


def _config(tmp_path, **sections) -> str:
    config = {"storage": {"root": str(tmp_path / "var")},
              "database": {"url": f"sqlite:///{tmp_path / 'var' / 'gateway.db'}"},
              "pixels": {"enabled": False}, **sections}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def _open_file(path, content: str = CANARY, mode: int = 0o644):
    path.write_text(content)
    path.chmod(mode)
    return path


def _run(config: str, *command: str, **env) -> subprocess.CompletedProcess:
    """A part of the gateway in its own process: it must stop before it serves anything."""
    return subprocess.run([sys.executable, "-m", "gateway", *command, "--config", config],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "DEID_GATEWAY_SECRET": "test-secret", **env})


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_secret_file_others_can_read_stops_start_up(tmp_path, monkeypatch, capsys, mode):
    monkeypatch.delenv("DEID_GATEWAY_SECRET", raising=False)
    secret = _open_file(tmp_path / "hmac-secret", mode=mode)
    assert main(["status", "--config", _config(tmp_path, deid={"secret_file": str(secret)})]) == 2
    err = capsys.readouterr().err
    assert str(secret) in err and "deid.secret_file" in err and CANARY not in err


def test_a_private_secret_file_outside_storage_is_used(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DEID_GATEWAY_SECRET", raising=False)
    (tmp_path / "etc").mkdir()
    secret = _open_file(tmp_path / "etc" / "hmac-secret", mode=0o600)
    assert main(["status", "--config", _config(tmp_path, deid={"secret_file": str(secret)})]) == 0
    assert not (tmp_path / "var" / "keys").exists()  # nothing kept beside the database


def test_the_kept_secret_made_readable_stops_start_up(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DEID_GATEWAY_SECRET", raising=False)
    config = _config(tmp_path)
    assert main(["status", "--config", config]) == 0
    kept = tmp_path / "var" / "keys" / "uid-secret"
    assert oct(kept.stat().st_mode & 0o777) == "0o600"
    kept.chmod(0o644)
    capsys.readouterr()
    assert main(["status", "--config", config]) == 2
    assert str(kept) in capsys.readouterr().err


def test_a_readable_mapping_key_stops_the_worker_and_refuses_lookups(tmp_path, capsys):
    key = _open_file(tmp_path / "mapping.key", "zX4tqGg0cN2m8k3J0Yb2v1sQ9xH5wR7pL6dE4fA3cB0=")
    config = _config(tmp_path, deid={"mapping": {"key_file": str(key)}})
    started = _run(config, "work")
    assert started.returncode == 2 and str(key) in started.stderr and "deid.mapping.key_file" in started.stderr

    os.environ["DEID_GATEWAY_SECRET"] = "test-secret"
    try:
        assert main(["mapping", "lookup", "DEID-000001", "--config", config]) == 2
        assert str(key) in capsys.readouterr().err
        assert main(["audit", "list", "--config", config]) == 0
        assert "refused" in capsys.readouterr().out
    finally:
        del os.environ["DEID_GATEWAY_SECRET"]


def test_a_readable_tls_key_or_token_file_stops_the_forwarder(tmp_path):
    pki = make_pki(tmp_path / "pki")
    pki.client.key.chmod(0o644)
    dimse = {"name": "secure", "ae_title": "ARCHIVE", "host": "localhost", "port": 2762,
             "tls": {"ca_file": str(pki.ca), "cert_file": str(pki.client.cert), "key_file": str(pki.client.key)}}
    started = _run(_config(tmp_path, egress={"destinations": [dimse]}), "forward")
    assert started.returncode == 2, started.stderr
    assert str(pki.client.key) in started.stderr and "tls.key_file" in started.stderr

    token = _open_file(tmp_path / "token")
    web = {"name": "web", "protocol": "stow-rs", "url": "https://archive.example.org/dicom-web",
           "token_file": str(token)}
    started = _run(_config(tmp_path, egress={"destinations": [web]}), "forward")
    assert started.returncode == 2, started.stderr
    assert str(token) in started.stderr and CANARY not in started.stderr


def test_a_missing_credential_stops_the_forwarder(tmp_path):
    web = {"name": "web", "protocol": "stow-rs", "url": "https://archive.example.org/dicom-web",
           "username": "gateway", "password_env": "NOT_SET_ANYWHERE"}
    started = _run(_config(tmp_path, egress={"destinations": [web]}), "forward")
    assert started.returncode == 2 and "NOT_SET_ANYWHERE" in started.stderr
