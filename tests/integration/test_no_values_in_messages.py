"""No message quotes a value taken from a dataset: reasons come from a fixed vocabulary.

Every attribute an error path reads gets a canary value a sender could have put a name in:
PhotometricInterpretation, the transfer syntax, SOP Class UID, BitsAllocated, Rows,
NumberOfFrames, the character set. The instances go through the network path (receiver, worker,
DEBUG logging) and batch mode; then the logs, the database with its WAL, the web pages and the
command line's output are searched for every canary. None may appear.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from tests.peers import free_port, storescu, wait_for
from tests.web.helpers import add_user, logged_in

pytestmark = pytest.mark.filterwarnings("ignore")

#: Canaries: none is a word, a number or a UID the gateway would ever write by itself.
CANARIES = {
    "PhotometricInterpretation": "ZQXJONES",
    "SpecificCharacterSet": "ZQXCHARSET",
    "NumberOfFrames": "98765431",
    "BitsAllocated": 31337,
    "Rows": 31338,
    "SOPClassUID": "1.2.840.99887766.1",
}
TRANSFER_SYNTAX_CANARY = "1.2.840.99887766.2"


def _canary_files(folder: Path) -> list[Path]:
    """CT_small once per canary, each with one attribute replaced (and its own UIDs)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for n, (keyword, value) in enumerate(CANARIES.items(), start=1):
        ds = dcmread(get_testdata_file("CT_small.dcm"))
        setattr(ds, keyword, value)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"1.2.826.0.1.3680043.8.498.66.{n}"
        if keyword == "SOPClassUID":  # the request names the real class; the dataset another
            ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        files.append(folder / f"canary{n}.dcm")
        ds.save_as(files[-1], enforce_file_format=True)
    return files


def _transfer_syntax_canary(folder: Path) -> Path:
    """An instance whose file meta names a transfer syntax no one defined (batch mode only:
    no association would accept it)."""
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.66.99"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    data = buffer.getvalue().replace(b"1.2.840.10008.1.2.1\0", TRANSFER_SYNTAX_CANARY.encode() + b"\0", 1)
    data = data[:140] + (int.from_bytes(data[140:144], "little") - 20 + len(TRANSFER_SYNTAX_CANARY) + 1).to_bytes(4, "little") + data[144:]
    path = folder / "canary-ts.dcm"
    path.write_bytes(data)
    return path


def _leaks(texts: dict[str, bytes]) -> dict[str, list[str]]:
    canaries = [str(v) for v in CANARIES.values()] + [TRANSFER_SYNTAX_CANARY]
    return {where: found for where, text in texts.items()
            if (found := [c for c in canaries if c.encode() in text])}


def _files_under(root: Path, pattern: str) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob(pattern) if p.is_file()}


@pytest.mark.peers
def test_the_network_path_quotes_no_value_anywhere(gateway_factory, tmp_path):
    web_port = free_port()
    gateway = gateway_factory([], queue={"stable_after": 0.5},
                              web={"enabled": True, "host": "127.0.0.1", "port": web_port})
    add_user(gateway, "reviewer", "admin", "reviewer-password")  # the console needs an account
    gateway.start()
    files = _canary_files(tmp_path / "in")
    storescu(gateway.port, files, "SCANNER", "DEID_GW", "--no-halt")
    wait_for(lambda: "processed" in gateway.cli("audit", "list").stdout, 120, what="the job")
    wait_for(lambda: _port_answers(web_port), 30, what="the web page")

    texts = _files_under(gateway.workdir, "*.log") | _files_under(gateway.workdir / "var", "gateway.db*")
    console = logged_in(f"http://127.0.0.1:{web_port}", "reviewer", "reviewer-password")
    for page in ("/", "/studies", "/audit", "/quarantine"):
        texts[f"web {page}"] = console.get(page).content
    for command in (["status"], ["audit", "list", "--limit", "1000"], ["quarantine"]):
        texts[" ".join(command)] = gateway.cli(*command).stdout.encode()
    assert _leaks(texts) == {}
    assert "quarantine is empty" not in texts["quarantine"].decode()  # the canaries did reach error paths


def test_batch_mode_quotes_no_value_anywhere(tmp_path):
    files = _canary_files(tmp_path / "in") + [_transfer_syntax_canary(tmp_path / "in")]
    env = {**os.environ, "DEID_GATEWAY_SECRET": "canary-key",
           "DEID_GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path / 'gateway.db'}"}
    run = subprocess.run([sys.executable, "-m", "gateway", "deid", "in", "out", "--device", "cpu",
                          "--jobs", "1", "-q"], cwd=tmp_path, env=env, capture_output=True, timeout=600)
    assert run.stdout.startswith(b"written: ")
    texts = {"stdout": run.stdout, "stderr": run.stderr} | _files_under(tmp_path, "gateway.db*")
    assert _leaks(texts) == {}
    assert len(files) == 7


def _port_answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
