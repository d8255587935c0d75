"""Instances per second through the whole chain: scanner -> gateway -> research archive.

Runs, in one go on the same generated study: dcmtk's storescu straight into Orthanc (the peer:
what the network and the archive cost alone), then storescu into the gateway forwarding to
Orthanc. Reports medians over --repeats runs and the ratio. The gateway's quiet time
(stable_after) is set to 0.5 s and subtracted, since it is a policy, not work.

    .venv/bin/python -m bench.chain --instances 200 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from tests.peers import Gateway, Orthanc, storescu, wait_for

STABLE_AFTER = 0.5


def make_study(folder: Path, count: int) -> list[Path]:
    source = dcmread(get_testdata_file("CT_small.dcm"))
    source.StudyInstanceUID = generate_uid()
    source.PatientName = "BENCH^PATIENT"
    files = []
    for n in range(count):
        source.SOPInstanceUID = generate_uid()
        source.file_meta.MediaStorageSOPInstanceUID = source.SOPInstanceUID
        source.InstanceNumber = n + 1
        files.append(folder / f"{n:05d}.dcm")
        source.save_as(files[-1])
    return files


def direct(root: Path, files: list[Path]) -> float:
    archive = Orthanc(root / "direct").start()
    try:
        start = time.perf_counter()
        storescu(archive.dicom_port, files, called=archive.aet)
        wait_for(lambda: len(archive.instances()) == len(files), 600, interval=0.05)
        return time.perf_counter() - start
    finally:
        archive.stop()


def through_gateway(root: Path, files: list[Path]) -> float:
    archive = Orthanc(root / "archive").start()
    destination = {"name": "archive", "ae_title": archive.aet, "host": "127.0.0.1",
                   "port": archive.dicom_port}
    gateway = Gateway(root / "gateway", destinations=[destination],
                      settings={"queue": {"stable_after": STABLE_AFTER, "scan_interval": 0.1},
                                "logging": {"level": "WARNING"}}).start()
    try:
        start = time.perf_counter()
        storescu(gateway.port, files)
        wait_for(lambda: len(archive.instances()) == len(files), 600, interval=0.05)
        return time.perf_counter() - start - STABLE_AFTER
    finally:
        gateway.stop()
        archive.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[float]] = {"storescu -> Orthanc": [], "storescu -> gateway -> Orthanc": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = make_study(root / "study", args.instances) if (root / "study").mkdir() is None else []
        for r in range(args.repeats):
            results["storescu -> Orthanc"].append(args.instances / direct(root / f"r{r}", files))
            results["storescu -> gateway -> Orthanc"].append(
                args.instances / through_gateway(root / f"r{r}", files))
    peer = statistics.median(results["storescu -> Orthanc"])
    print(f"{args.instances} CT instances (CT_small.dcm, 128x128, 16 bit), {args.repeats} runs, medians")
    print(f"{'path':<34} {'instances/s':>12} {'ratio to direct':>16}")
    for name, rates in results.items():
        median = statistics.median(rates)
        print(f"{name:<34} {median:>12.1f} {median / peer:>16.2f}")


if __name__ == "__main__":
    main()
