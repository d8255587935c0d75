"""Destination settings that would send a credential in clear are refused when the
configuration is loaded, naming the destination; the explicit setting lets a test bench do it."""

from __future__ import annotations

import pytest
import yaml

from gateway.config import ConfigError, load_config

WEB = {"name": "web", "protocol": "stow-rs", "url": "http://archive.example.org/dicom-web"}


def _load(tmp_path, *destinations: dict):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"egress": {"destinations": list(destinations)}}))
    return load_config(path)


@pytest.mark.parametrize("credential", [
    {"username": "gateway", "password_env": "ARCHIVE_PASSWORD"},
    {"token_env": "ARCHIVE_TOKEN"},
    {"token_file": "/etc/deid-gateway/token"},
    {"oauth": {"token_url": "https://login.example.org/token", "client_id": "c", "client_secret_env": "S"}},
    {"url": "http://user:pw@archive.example.org/dicom-web"},
])
def test_credentials_over_plain_http_are_refused(tmp_path, credential):
    with pytest.raises(ConfigError, match=r"egress\.destinations\.0: credentials would travel over plain http"):
        _load(tmp_path, {**WEB, **credential})


def test_an_oauth_token_endpoint_over_plain_http_is_refused(tmp_path):
    oauth = {"token_url": "http://login.example.org/token", "client_id": "c", "client_secret_env": "S"}
    with pytest.raises(ConfigError, match="OAuth client secret would travel over plain http"):
        _load(tmp_path, {**WEB, "url": "https://archive.example.org/dicom-web", "oauth": oauth})


def test_the_explicit_setting_allows_a_test_bench(tmp_path):
    config = _load(tmp_path, {**WEB, "username": "gateway", "password_env": "P",
                              "allow_credentials_over_http": True})
    assert config.egress.destinations[0].allow_credentials_over_http


def test_no_credential_over_http_needs_no_setting(tmp_path):
    assert _load(tmp_path, WEB).egress.destinations[0].url.startswith("http://")


@pytest.mark.parametrize("destination, message", [
    ({**WEB, "tls": {"ca_file": "/ca.pem"}}, "tls settings need an https:// url"),
    ({**WEB, "url": "https://a.example.org", "username": "u", "token_env": "T"}, "give one of"),
    ({**WEB, "url": "https://a.example.org", "token_env": "T", "token_file": "/t"}, "not both"),
    ({"name": "d", "ae_title": "A", "host": "h", "port": 104, "username": "u"}, "dimse destination takes no"),
    ({"name": "d", "ae_title": "A", "host": "h", "port": 104, "tls": {"key_file": "/k"}}, "needs tls.cert_file"),
    ({**WEB, "url": "ftp://a.example.org"}, "must start with https://"),
])
def test_inconsistent_destinations_are_refused(tmp_path, destination, message):
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, destination)
