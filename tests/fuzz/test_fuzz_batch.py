"""Fuzzing batch mode: 200 damaged inputs (a fixed sample; ``bench/fuzz.py`` runs 1,000).

Every input must end written, skipped as not DICOM, or quarantined with a reason: no crash, no
hang, and the process's peak memory stays under a stated bound whatever the inputs declare.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.mutate import corpus

SAMPLE = 200
#: Peak resident memory of the whole ``deid`` process (models loaded included), in MiB.
PEAK_RSS_MIB = 1536
#: The runner prints the process's own peak RSS after the command's summary.
RUNNER = """
import resource, sys
from gateway.cli import main
code = main(sys.argv[1:])
print("peak-rss-kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(code)
"""

pytestmark = pytest.mark.filterwarnings("ignore")


def run_batch(tmp_path: Path, inputs: list[tuple[str, bytes]], timeout: float) -> tuple[subprocess.CompletedProcess, int]:
    folder = tmp_path / "in"
    folder.mkdir(parents=True)
    for name, data in inputs:
        (folder / name).write_bytes(data)
    env = {**os.environ, "DEID_GATEWAY_SECRET": "fuzz-key",
           "DEID_GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path / 'gateway.db'}"}
    run = subprocess.run([sys.executable, "-c", RUNNER, "deid", "in", "out", "--device", "cpu", "--jobs", "1", "-q"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)
    peak = next((int(line.split()[1]) for line in run.stdout.splitlines() if line.startswith("peak-rss-kib")), 0)
    return run, peak // 1024


def summary(stdout: str) -> tuple[int, int, int]:
    """(written, not DICOM, quarantined) from the command's first line."""
    first = stdout.splitlines()[0].split()
    return int(first[1]), int(first[4]), int(first[6])


def test_every_damaged_input_ends_written_skipped_or_quarantined(tmp_path):
    inputs = corpus(SAMPLE, seed=0)
    run, peak_mib = run_batch(tmp_path, inputs, timeout=900)
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert run.returncode in (0, 1), run.stderr[-3000:]
    written, not_dicom, quarantined = summary(run.stdout)
    assert written + not_dicom + quarantined == SAMPLE, run.stdout
    assert 0 < peak_mib < PEAK_RSS_MIB
