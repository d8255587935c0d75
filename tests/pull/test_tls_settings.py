"""A pull source's TLS settings are checked when the pull starts: a missing CA file or a key
others can read stops it, naming the setting, before any item is tried (never a plain retry)."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, load_config
from gateway.pull.runner import Puller
from tests.ingest.tls_pki import make_ingest_pki


def _config(tls: dict):
    return load_config(None, {"pull": {"sources": [
        {"name": "pacs", "ae_title": "PACS", "host": "127.0.0.1", "port": 104, "tls": tls}]}})


def test_a_missing_ca_file_stops_the_pull(tmp_path):
    with pytest.raises(ConfigError, match=r"pull\.sources\.pacs\.tls\.ca_file"):
        Puller(_config({"ca_file": str(tmp_path / "nowhere.pem")}), None, b"s" * 32)


def test_a_key_others_can_read_stops_the_pull(tmp_path):
    pki = make_ingest_pki(tmp_path / "pki")
    pki.gateway.key.chmod(0o644)
    with pytest.raises(ConfigError, match=r"pull\.sources\.pacs\.tls\.key_file"):
        Puller(_config({"ca_file": str(pki.ca), "cert_file": str(pki.gateway.cert),
                        "key_file": str(pki.gateway.key)}), None, b"s" * 32)


def test_a_key_without_a_certificate_is_refused_when_the_configuration_loads():
    with pytest.raises(ConfigError, match="key_file needs"):
        _config({"key_file": "/etc/deid-gateway/gateway.key"})
