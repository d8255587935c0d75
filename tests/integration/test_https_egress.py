"""STOW-RS over HTTPS to Orthanc behind a TLS-terminating proxy (Debian's stunnel), trusted
through the destination's CA bundle; a bearer token from an OAuth 2.0 client credentials flow;
and an archive whose certificate the bundle does not vouch for, which gets nothing.

Orthanc's own HTTPS (SslEnabled) would be the simpler peer, but Debian 12's build (civetweb on
OpenSSL 3) dies on the first TLS connection; a proxy in front is also how sites usually run it.
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gateway.tls import TLS12_CIPHERS
from tests.peers import (
    ARCHIVE_PASSWORD,
    ARCHIVE_USER,
    DICOMWEB_PLUGIN,
    Orthanc,
    free_port,
    port_open,
    storescu,
    wait_for,
)
from tests.security.pki import Leaf, make_pki

STUNNEL = shutil.which("stunnel4") or shutil.which("stunnel")
pytestmark = [pytest.mark.skipif(not DICOMWEB_PLUGIN.exists(), reason="orthanc-dicomweb not installed"),
              pytest.mark.skipif(not STUNNEL, reason="stunnel4 not installed (deploy/setup.sh --test)")]

FAST = {"pixels": {"enabled": False}}
CLIENT_ID, CLIENT_SECRET = "deid-gateway", "client-secret-for-tests"


@pytest.fixture
def pki(tmp_path):
    return make_pki(tmp_path / "pki")


class TlsArchive:
    """Orthanc, reached over HTTPS through stunnel presenting ``leaf``; the tests look at
    Orthanc itself over its plain loopback port."""

    def __init__(self, folder: Path, leaf: Leaf, **orthanc_settings):
        self.orthanc = Orthanc(folder / "orthanc", extra=orthanc_settings).start()
        self.port = free_port()
        config = folder / "stunnel.conf"
        config.write_text("\n".join([
            "foreground = yes", "pid =", f"output = {folder / 'stunnel.log'}", "debug = 5",
            "[archive]", f"accept = 127.0.0.1:{self.port}", f"connect = 127.0.0.1:{self.orthanc.http_port}",
            f"cert = {leaf.cert}", f"key = {leaf.key}", "sslVersionMin = TLSv1.2",
            f"ciphers = {TLS12_CIPHERS}", ""]))
        self.proxy = subprocess.Popen([STUNNEL, str(config)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
        wait_for(lambda: port_open(self.port), 20, what="stunnel to listen")
        self.url = f"https://localhost:{self.port}"

    def stop(self) -> None:
        self.proxy.terminate()
        self.proxy.wait(10)
        self.orthanc.stop()


def _tls_orthanc(tmp_path, leaf, **settings) -> TlsArchive:
    return TlsArchive(tmp_path, leaf, **settings)


def test_stow_rs_over_https_with_the_ca_bundle(tmp_path, pki, gateway_factory, study, monkeypatch):
    archive = _tls_orthanc(tmp_path, pki.server)
    try:
        monkeypatch.setenv("ARCHIVE_PASSWORD", ARCHIVE_PASSWORD)
        gateway = gateway_factory([{
            "name": "web-archive", "protocol": "stow-rs", "url": archive.url + "/dicom-web",
            "username": ARCHIVE_USER, "password_env": "ARCHIVE_PASSWORD", "tls": {"ca_file": str(pki.ca)},
        }], **FAST).start()
        storescu(gateway.port, study.files[:4])
        wait_for(lambda: len(archive.orthanc.instances()) == 4, 90, what="STOW-RS over HTTPS")
    finally:
        archive.stop()


def test_an_archive_the_bundle_does_not_vouch_for_gets_nothing(tmp_path, pki, gateway_factory, study, monkeypatch):
    archive = _tls_orthanc(tmp_path, pki.impostor)
    try:
        monkeypatch.setenv("ARCHIVE_PASSWORD", ARCHIVE_PASSWORD)
        gateway = gateway_factory([{
            "name": "web-archive", "protocol": "stow-rs", "url": archive.url + "/dicom-web",
            "username": ARCHIVE_USER, "password_env": "ARCHIVE_PASSWORD", "tls": {"ca_file": str(pki.ca)},
        }], **FAST).start()
        storescu(gateway.port, study.files[:2])
        wait_for(lambda: "tls_handshake_failed" in gateway.cli("audit", "list").stdout, 60,
                 what="an audited handshake failure")
        assert "certificate not accepted" in gateway.cli("audit", "list", "--event", "tls_handshake_failed").stdout
        assert archive.orthanc.instances() == [] and archive.orthanc.stores_received() == 0
    finally:
        archive.stop()


class TokenEndpoint:
    """A minimal OAuth 2.0 authorization server on loopback, over TLS: it grants short-lived
    tokens (``expires_in`` 60 s, which authlib's 60 s leeway treats as spent at once, so every
    request fetches a new one) to the one client it knows, and remembers each token request."""

    def __init__(self, leaf):
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                form = dict(urllib.parse.parse_qsl(body))
                basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
                granted = (self.headers.get("Authorization") == f"Basic {basic}"
                           and form.get("grant_type") == "client_credentials")
                outer.requests.append({"granted": granted, "scope": form.get("scope")})
                answer = ({"access_token": f"good-{len(outer.requests)}", "token_type": "Bearer",
                           "expires_in": 60} if granted else {"error": "invalid_client"})
                data = json.dumps(answer).encode()
                self.send_response(200 if granted else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(leaf.cert), str(leaf.key))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


#: Orthanc admits a request with a token the endpoint granted ("good-N"), or the test's own
#: basic credentials (for looking); anything else gets 403.
BEARER_FILTER = """
function IncomingHttpRequestFilter(method, uri, ip, username, httpHeaders)
  local auth = httpHeaders['authorization'] or ''
  return string.sub(auth, 1, 12) == 'Bearer good-' or auth == '{basic}'
end
"""


def test_stow_rs_with_an_oauth_client_credentials_token(tmp_path, pki, gateway_factory, study, monkeypatch):
    endpoint = TokenEndpoint(pki.server)
    basic = "Basic " + base64.b64encode(f"{ARCHIVE_USER}:{ARCHIVE_PASSWORD}".encode()).decode()
    (tmp_path / "filter.lua").write_text(BEARER_FILTER.replace("{basic}", basic))
    archive = _tls_orthanc(tmp_path, pki.server, AuthenticationEnabled=False,
                           LuaScripts=[str(tmp_path / "filter.lua")])
    secret_file = tmp_path / "client-secret"
    secret_file.write_text(CLIENT_SECRET + "\n")
    secret_file.chmod(0o600)
    try:
        gateway = gateway_factory([{
            "name": "cloud", "protocol": "stow-rs", "url": archive.url + "/dicom-web",
            "tls": {"ca_file": str(pki.ca)},
            "oauth": {"token_url": endpoint.url, "client_id": CLIENT_ID, "scope": "dicom.write",
                      "client_secret_file": str(secret_file), "ca_file": str(pki.ca)},
        }], egress={"batch_size": 2}, **FAST).start()
        storescu(gateway.port, study.files[:4])
        wait_for(lambda: len(archive.orthanc.instances()) == 4, 90, what="STOW-RS with a bearer token")
    finally:
        archive.stop()
        endpoint.stop()
    assert endpoint.requests and all(r["granted"] and r["scope"] == "dicom.write" for r in endpoint.requests)
    assert len(endpoint.requests) >= 2  # each token was spent: fetched again when it expired
