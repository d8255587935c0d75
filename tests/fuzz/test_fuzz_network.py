"""Fuzzing the network path: damaged instances offered over C-STORE to a running gateway.

Each input goes on its own association, its bytes sent as they are (pynetdicom's chunked send
does not parse the dataset). Every request must be answered with a status, or its association
aborted, within a bound; the gateway must stay up; every instance it acknowledged must end
processed or quarantined; and its peak memory must stay under a stated bound.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest
from pydicom import dcmread
from pynetdicom import AE, _config

from tests.fuzz.mutate import corpus
from tests.peers import wait_for

pytestmark = [pytest.mark.peers, pytest.mark.filterwarnings("ignore")]

SAMPLE = 200
#: Peak resident memory of the gateway process (receiver, worker with models, forwarder), MiB.
PEAK_RSS_MIB = 1536
#: How long one C-STORE may take to be answered (or its association to end), in seconds.
ANSWER_WITHIN = 30


def offer(port: int, path: Path) -> int | None:
    """C-STORE the file's dataset bytes unparsed; the response status, or None when the
    association was rejected, aborted or not answered in time."""
    try:
        meta = dcmread(path, stop_before_pixels=True, force=True).file_meta
        sop_class, syntax = meta.MediaStorageSOPClassUID, meta.TransferSyntaxUID
    except Exception:  # noqa: BLE001 - no usable file meta: nothing a sender could offer
        return None
    ae = AE(ae_title="SCANNER")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = ANSWER_WITHIN
    try:
        ae.add_requested_context(sop_class, syntax)
    except ValueError:
        return None  # not a UID pynetdicom can propose
    assoc = ae.associate("127.0.0.1", port, ae_title="DEID_GW")
    if not assoc.is_established:
        return None
    try:
        status = assoc.send_c_store(path)
    except Exception:  # noqa: BLE001 - pynetdicom could not even send it
        status = None
    if assoc.is_established:
        assoc.release()
    return int(status.Status) if status is not None and "Status" in status else None


def vm_hwm_mib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return 0


def unfinished(database: Path) -> list[tuple[str, int]]:
    with closing(sqlite3.connect(database, timeout=10)) as db:
        return db.execute("SELECT state, count(*) FROM instances WHERE state NOT IN "
                          "('processed', 'quarantined', 'delivered') GROUP BY state").fetchall()


def test_every_damaged_instance_is_answered_and_ends_processed_or_quarantined(gateway_factory, tmp_path):
    gateway = gateway_factory([], queue={"stable_after": 0.5}).start()
    folder = tmp_path / "inputs"
    folder.mkdir()
    answered = 0
    chunked, _config.STORE_SEND_CHUNKED_DATASET = _config.STORE_SEND_CHUNKED_DATASET, True
    try:
        for name, data in corpus(SAMPLE, seed=0):
            path = folder / name
            path.write_bytes(data)
            started = time.monotonic()
            status = offer(gateway.port, path)
            assert time.monotonic() - started < ANSWER_WITHIN + 5, name
            answered += status is not None
            assert gateway.process.poll() is None, f"the gateway died on {name}"
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = chunked
    assert answered > SAMPLE // 2

    database = gateway.workdir / "var" / "gateway.db"
    wait_for(lambda: unfinished(database) == [], 300, interval=1, what="every instance processed or quarantined")
    status = gateway.cli("status").stdout
    assert "failed studies (0)" in status, status
    assert vm_hwm_mib(gateway.process.pid) < PEAK_RSS_MIB
