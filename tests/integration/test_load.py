"""Load: several associations at once, each delivering its own instances; every instance is
acknowledged, archived exactly once, and the gateway's memory stays bounded.

CI runs 4 associations × 25 instances of 0.5 MB; ``bench/load.py`` runs 10 × 500 and prints
the figures.
"""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from tests.integration.conftest import destination_for
from tests.peers import STORESCU, wait_for

pytestmark = pytest.mark.peers

#: The gateway's peak resident memory (receiver, worker with its models, forwarder), MiB.
PEAK_RSS_MIB = 1024


def make_instances(folder: Path, association: int, count: int) -> list[Path]:
    """``count`` CT instances of 512×512 16 bit (0.5 MB), one study per association, fixed UIDs."""
    folder.mkdir(parents=True, exist_ok=True)
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    ds.PixelData = cv2.resize(ds.pixel_array, (512, 512), interpolation=cv2.INTER_CUBIC).tobytes()
    ds.Rows = ds.Columns = 512
    root = f"1.2.826.0.1.3680043.8.498.88.{association}"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = f"{root}.1", f"{root}.2"
    files = []
    for n in range(count):
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{root}.3.{n + 1}"
        ds.InstanceNumber = n + 1
        files.append(folder / f"{n:05d}.dcm")
        ds.save_as(files[-1], enforce_file_format=True)
    return files


def send(port: int, files: list[Path], called: str, errors: list[str] | None = None) -> int:
    """One association (storescu, as a modality sends); returns how many were acknowledged, and
    adds storescu's error lines to ``errors``."""
    done = subprocess.run([STORESCU, "-v", "-aet", "SCANNER", "-aec", called, "127.0.0.1", str(port),
                           *map(str, files)], capture_output=True, text=True, timeout=3600,
                          env={"TCP_NODELAY": "1", "PATH": "/usr/bin:/bin"})
    output = done.stdout + done.stderr
    if errors is not None:
        errors += [line for line in output.splitlines() if line.startswith(("E:", "F:"))]
    return output.count("Received Store Response (Success")


def vm_hwm_mib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return 0


@dataclass
class LoadResult:
    sent: int
    acknowledged: int
    archived: int
    stores: int
    peak_rss_mib: int
    seconds: float
    sender_errors: list[str]


def load(gateway, archive, work: Path, associations: int, per_association: int) -> LoadResult:
    batches = [make_instances(work / f"a{a}", a, per_association) for a in range(associations)]
    started = time.perf_counter()
    errors: list[str] = []
    with ThreadPoolExecutor(associations) as pool:
        acknowledged = sum(pool.map(lambda files: send(gateway.port, files, gateway.ae_title, errors), batches))
    total = associations * per_association
    wait_for(lambda: len(archive.instances()) >= acknowledged, 3600, interval=0.5, what="everything archived")
    seconds = time.perf_counter() - started
    time.sleep(2)  # a resend, if any, would land now
    return LoadResult(total, acknowledged, len(archive.instances()), archive.stores_received(),
                      vm_hwm_mib(gateway.process.pid), seconds, errors[:10])


def test_concurrent_associations_are_all_acknowledged_and_archived_once(archive, gateway_factory, tmp_path):
    gateway = gateway_factory([destination_for(archive)], queue={"stable_after": 1},
                              logging={"level": "WARNING"}).start()
    result = load(gateway, archive, tmp_path, associations=4, per_association=25)
    assert result.acknowledged == result.sent == 100
    assert result.archived == result.stores == 100  # each exactly once
    assert result.peak_rss_mib < PEAK_RSS_MIB
