"""``check-config`` shows the configuration without a single secret, and names key files that
others could read."""

from __future__ import annotations

import os
import subprocess
import sys

import yaml

CANARY = "Canary-Pa55word-7f3a9c"


def _check_config(tmp_path, config: dict, **env) -> subprocess.CompletedProcess:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.run([sys.executable, "-m", "gateway", "check-config", "--config", str(path)],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={**os.environ, **env})


def test_every_password_token_and_secret_is_masked(tmp_path):
    secret_file = tmp_path / "client-secret"
    secret_file.write_text(CANARY)
    secret_file.chmod(0o600)
    config = {
        "storage": {"root": str(tmp_path / "var")},
        "database": {"url": f"postgresql+psycopg://gateway:{CANARY}@db.example.org/gateway"},
        "deid": {"secret": CANARY},
        "egress": {"destinations": [
            {"name": "web", "protocol": "stow-rs", "url": f"https://user:{CANARY}@archive.example.org/dicom-web"},
            {"name": "basic", "protocol": "stow-rs", "url": "https://archive.example.org/dicom-web",
             "username": "gateway", "password_env": "ARCHIVE_PASSWORD"},
            {"name": "cloud", "protocol": "stow-rs", "url": "https://dicom.example.com/v1",
             "oauth": {"token_url": "https://login.example.com/token", "client_id": "deid",
                       "client_secret_file": str(secret_file)}},
        ]},
    }
    result = _check_config(tmp_path, config, ARCHIVE_PASSWORD=CANARY, DEID_GATEWAY_MAPPING_KEY=CANARY)
    assert result.returncode == 0, result.stderr
    assert CANARY not in result.stdout + result.stderr
    assert "postgresql+psycopg://gateway:********@db.example.org/gateway" in result.stdout
    assert "configuration is valid" in result.stdout


def test_the_database_url_from_the_environment_is_masked_too(tmp_path):
    result = _check_config(tmp_path, {"storage": {"root": str(tmp_path / "var")}},
                           DEID_GATEWAY_DATABASE_URL=f"postgresql+psycopg://gw:{CANARY}@db/gw",
                           DEID_GATEWAY_SECRET=CANARY)
    assert result.returncode == 0, result.stderr
    assert CANARY not in result.stdout + result.stderr


def test_key_files_others_can_read_are_named(tmp_path):
    secret = tmp_path / "hmac-secret"
    secret.write_text(CANARY)
    secret.chmod(0o644)
    mapping_key = tmp_path / "mapping.key"
    mapping_key.write_text(CANARY)
    mapping_key.chmod(0o640)
    result = _check_config(tmp_path, {"storage": {"root": str(tmp_path / "var")},
                                      "deid": {"secret_file": str(secret), "mapping": {"key_file": str(mapping_key)}}})
    assert result.returncode == 2
    assert str(secret) in result.stderr and "0644" in result.stderr
    assert str(mapping_key) in result.stderr and "0640" in result.stderr
    assert CANARY not in result.stdout + result.stderr
