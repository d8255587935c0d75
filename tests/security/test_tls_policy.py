"""The TLS policy of every connection the gateway makes: BCP 195 versions and suites, the
archive's certificate verified with its host name, nothing from the environment widening what
is trusted. The peers are Python TLS servers on loopback, made by the test."""

from __future__ import annotations

import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from gateway import tls
from gateway.config import ConfigError
from gateway.egress.config import Destination, TlsSettings
from gateway.egress.https import build_session
from gateway.keys import KeyFileError
from tests.security.pki import make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_tls_1_2_at_least_and_only_forward_secret_aead_suites(pki):
    context = tls.client_context(TlsSettings(ca_file=pki.ca), "x")
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    for cipher in context.get_ciphers():
        if cipher["protocol"] == "TLSv1.2":
            assert cipher["kea"] in ("kx-ecdhe", "kx-dhe") and cipher["aead"], cipher["name"]
    assert tls.client_context(TlsSettings(ca_file=pki.ca, min_version="1.3"), "x").minimum_version \
        == ssl.TLSVersion.TLSv1_3


def _tls_server(leaf) -> tuple[socket.socket, int]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(leaf.cert), str(leaf.key))
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        try:
            conn, _ = listener.accept()
            with context.wrap_socket(conn, server_side=True) as secure:
                secure.recv(1)
        except (OSError, ssl.SSLError):
            pass

    threading.Thread(target=serve, daemon=True).start()
    return listener, listener.getsockname()[1]


@pytest.mark.parametrize("leaf_name, reason", [
    ("wrong_name", "Hostname mismatch"),
    ("impostor", "unable to get local issuer certificate"),
])
def test_a_wrong_name_or_an_unknown_ca_fails_the_handshake_with_its_reason(pki, leaf_name, reason):
    listener, port = _tls_server(getattr(pki, leaf_name))
    context = tls.client_context(TlsSettings(ca_file=pki.ca), "x")
    failures = tls.watch_handshakes(context)
    with listener, pytest.raises(ssl.SSLCertVerificationError):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            context.wrap_socket(raw, server_hostname="localhost")
    assert len(failures) == 1 and failures[0].startswith("certificate not accepted") and reason in failures[0]


def test_a_client_key_others_can_read_is_refused_naming_it(pki, tmp_path):
    key = tmp_path / "client.key"
    key.write_bytes(pki.client.key.read_bytes())
    key.chmod(0o644)
    with pytest.raises(KeyFileError, match=rf"dest\.tls\.key_file: {key} is accessible to group or others"):
        tls.client_context(TlsSettings(ca_file=pki.ca, cert_file=pki.client.cert, key_file=key), "dest.tls")


def test_a_missing_ca_bundle_names_its_setting(tmp_path):
    with pytest.raises(ConfigError, match=r"dest\.tls\.ca_file: .* does not exist"):
        tls.client_context(TlsSettings(ca_file=tmp_path / "none.pem"), "dest.tls")


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def https_server(pki):
    def start(leaf):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(leaf.cert), str(leaf.key))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"https://localhost:{server.server_address[1]}"

    servers: list = []
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_the_https_session_trusts_the_bundle_and_nothing_the_environment_adds(pki, https_server, monkeypatch):
    trusted, impostor = https_server(pki.server), https_server(pki.impostor)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.other_ca))  # would vouch for the impostor
    for url, ok in ((trusted, True), (impostor, False)):
        destination = Destination(name="web", protocol="stow-rs", url=url + "/dicom-web",
                                  tls=TlsSettings(ca_file=pki.ca))
        session = build_session(destination)
        if ok:
            assert session.get(url + "/dicom-web/studies", timeout=5).status_code == 200
            assert session.get(url + "/", timeout=5, verify=False).status_code == 200  # verified anyway
        else:
            with pytest.raises(requests.exceptions.SSLError) as refused:
                session.get(url + "/dicom-web/studies", timeout=5, verify=False)
            assert "certificate not accepted" in tls.describe(tls.find_ssl_error(refused.value))
