"""DICOM TLS to the research archive, against dcmtk's own TLS storescp (BCP 195 profile).

A trusted archive with mutual authentication receives the study. An archive presenting a
certificate from another CA, and one that speaks no TLS at all, receive nothing: the deliveries
stay pending with their attempts counted, each failed handshake is audited, and nothing is ever
sent in clear.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.peers import free_port, port_open, storescu, wait_for
from tests.security.pki import Leaf, make_pki

STORESCP = shutil.which("storescp")
pytestmark = pytest.mark.skipif(not STORESCP, reason="dcmtk storescp not installed")

FAST = {"pixels": {"enabled": False}}


class Storescp:
    """dcmtk's storescp as the archive: plain, or TLS with its certificate and the CA it trusts
    for client certificates (a client certificate is then required: dcmtk's default)."""

    def __init__(self, folder: Path, leaf: Leaf | None = None, client_ca: Path | None = None):
        self.folder, self.port = folder, free_port()
        folder.mkdir(parents=True)
        (folder / "in").mkdir()
        tls = ["+tls", str(leaf.key), str(leaf.cert), "-pw", "+cf", str(client_ca)] if leaf else []
        self.log = open(folder / "storescp.log", "wb")
        self.process = subprocess.Popen(
            [STORESCP, "-v", "--aetitle", "ARCHIVE", "-od", str(folder / "in"), *tls, str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: port_open(self.port), 20, what="storescp to listen")

    def received(self) -> list[Path]:
        return sorted((self.folder / "in").iterdir())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self.log.close()


@pytest.fixture
def pki(tmp_path):
    return make_pki(tmp_path / "pki")


@pytest.fixture
def archives():
    started: list[Storescp] = []

    def start(*args, **kwargs) -> Storescp:
        started.append(Storescp(*args, **kwargs))
        return started[-1]

    yield start
    for archive in started:
        archive.stop()


def _destination(name: str, archive: Storescp, tls: dict) -> dict:
    return {"name": name, "ae_title": "ARCHIVE", "host": "localhost", "port": archive.port, "tls": tls}


def _deliveries(gateway) -> dict[str, list[tuple[str, int]]]:
    db = sqlite3.connect(f"file:{gateway.workdir / 'var' / 'gateway.db'}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT destination, state, attempts FROM deliveries").fetchall()
    finally:
        db.close()
    found: dict[str, list[tuple[str, int]]] = {}
    for destination, state, attempts in rows:
        found.setdefault(destination, []).append((state, attempts))
    return found


def test_a_trusted_archive_receives_the_study_over_mutual_tls(tmp_path, pki, archives, gateway_factory, study):
    archive = archives(tmp_path / "archive", pki.server, client_ca=pki.ca)
    tls = {"ca_file": str(pki.ca), "cert_file": str(pki.client.cert), "key_file": str(pki.client.key)}
    gateway = gateway_factory([_destination("secure", archive, tls)], **FAST).start()

    storescu(gateway.port, study.files[:4])

    wait_for(lambda: len(archive.received()) == 4, 90, what="delivery over DICOM TLS")
    wait_for(lambda: "forwarded" in gateway.cli("audit", "list").stdout, 30, what="the study to close")
    assert "tls_handshake_failed" not in gateway.cli("audit", "list").stdout


def test_an_untrusted_or_plain_archive_gets_nothing_and_the_delivery_waits(
        tmp_path, pki, archives, gateway_factory, study):
    impostor = archives(tmp_path / "impostor", pki.impostor, client_ca=pki.ca)
    plain = archives(tmp_path / "plain")  # no TLS at all: the gateway must not fall back to it
    tls = {"ca_file": str(pki.ca), "cert_file": str(pki.client.cert), "key_file": str(pki.client.key)}
    gateway = gateway_factory([_destination("impostor", impostor, tls), _destination("plain", plain, tls)],
                              **FAST).start()

    storescu(gateway.port, study.files[:2])

    def both_retried():
        found = _deliveries(gateway)
        return all(len(found.get(name, [])) == 2 and all(state == "pending" and attempts >= 2
                                                         for state, attempts in found[name])
                   for name in ("impostor", "plain"))

    wait_for(both_retried, 90, what="both destinations to be retried")
    trail = gateway.cli("audit", "list", "--event", "tls_handshake_failed").stdout
    assert "impostor" in trail and "certificate not accepted" in trail
    assert "plain" in trail
    assert impostor.received() == [] and plain.received() == []
