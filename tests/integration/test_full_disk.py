"""A real full disk: the spool on a small tmpfs. Each instance is answered Success or 0xA700
(out of resources), never anything half-written acknowledged, and every acknowledged instance
is whole in the spool and recorded.

Needs root to mount the tmpfs (CI runs as root); skipped, with the reason, elsewhere.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest

from tests.integration.test_load import make_instances
from tests.peers import STORESCU

pytestmark = pytest.mark.peers
SPOOL_MIB = 12


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SPOOL_MIB}m,mode=0700", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _responses(output: str) -> list[str]:
    return [line.split("Received Store Response (", 1)[1].rstrip(")") for line in output.splitlines()
            if "Received Store Response (" in line]


def test_a_full_spool_answers_out_of_resources_and_acknowledges_only_whole_instances(
        gateway_factory, small_disk, tmp_path):
    gateway = gateway_factory([], storage={"spool_dir": str(small_disk), "min_free_bytes": 0},
                              queue={"stable_after": 3600}).start()
    files = make_instances(tmp_path / "in", 1, 40)  # 40 x 0.5 MB into 12 MB
    sent = subprocess.run([STORESCU, "-v", "--no-halt", "-aet", "SCANNER", "-aec", gateway.ae_title, "127.0.0.1",
                           str(gateway.port), *map(str, files)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TCP_NODELAY": "1"})
    responses = _responses(sent.stdout + sent.stderr)
    assert len(responses) == len(files)
    assert set(responses) == {"Success", "Refused: OutOfResources"}, set(responses)  # dcmtk's words for 0xA700
    assert gateway.process.poll() is None

    with closing(sqlite3.connect(gateway.workdir / "var" / "gateway.db")) as db:
        rows = db.execute("SELECT spool_path, sha256 FROM instances").fetchall()
    assert len(rows) == responses.count("Success")
    for path, digest in rows:  # every acknowledged instance is whole in the spool
        assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == digest
    assert not list(small_disk.rglob(".incoming-*"))  # nothing half-written kept
