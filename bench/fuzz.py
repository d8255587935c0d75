"""Fuzzing both paths with the full corpus: 1,000 damaged inputs (CI runs a sample of 200).

For batch mode: how each input ended (written, not DICOM, quarantined), crashes and the peak
RSS of the ``deid`` process. For the network path: how many C-STOREs were answered, refused or
aborted, the slowest answer, whether the gateway stayed up, instances not finished after the
queue drained, and the gateway's peak RSS (VmHWM).

    .venv/bin/python -m bench.fuzz --inputs 1000 [--seed 0] [--skip-network]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

from pynetdicom import _config

from tests.fuzz.mutate import corpus
from tests.fuzz.test_fuzz_batch import run_batch, summary
from tests.fuzz.test_fuzz_network import offer, unfinished, vm_hwm_mib
from tests.peers import Gateway, wait_for


def batch(inputs: list[tuple[str, bytes]], work: Path) -> dict:
    started = time.perf_counter()
    run, peak = run_batch(work, inputs, timeout=3600)
    written, not_dicom, quarantined = summary(run.stdout) if run.stdout else (0, 0, 0)
    return {"written": written, "not DICOM": not_dicom, "quarantined": quarantined,
            "crashed": int("Traceback" in run.stderr or run.returncode not in (0, 1)),
            "peak RSS MiB": peak, "seconds": round(time.perf_counter() - started, 1)}


def network(inputs: list[tuple[str, bytes]], work: Path) -> dict:
    gateway = Gateway(work / "gateway", destinations=[], settings={"queue": {"stable_after": 0.5}}).start()
    outcome: Counter = Counter()
    slowest = 0.0
    chunked, _config.STORE_SEND_CHUNKED_DATASET = _config.STORE_SEND_CHUNKED_DATASET, True
    try:
        for name, data in inputs:
            path = work / name
            path.write_bytes(data)
            started = time.monotonic()
            status = offer(gateway.port, path)
            slowest = max(slowest, time.monotonic() - started)
            outcome["no answer (not offered, rejected or aborted)" if status is None
                    else "success" if status == 0 else f"refused 0x{status:04X}"] += 1
            path.unlink()
            if gateway.process.poll() is not None:
                outcome["gateway died"] += 1
                break
        database = gateway.workdir / "var" / "gateway.db"
        try:
            wait_for(lambda: unfinished(database) == [], 600, interval=1, what="the queue to drain")
        except TimeoutError:
            pass
        left = sum(n for _, n in unfinished(database))
        peak = vm_hwm_mib(gateway.process.pid) if gateway.process.poll() is None else -1
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = chunked
        gateway.stop()
    return {**dict(sorted(outcome.items())), "slowest answer s": round(slowest, 2),
            "unfinished instances": left, "peak RSS MiB": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-network", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    inputs = corpus(args.inputs, seed=args.seed)
    kinds = Counter(name.split("-")[1] for name, _ in inputs)
    print(f"{len(inputs)} inputs: " + ", ".join(f"{k} {n}" for k, n in kinds.most_common()))
    with tempfile.TemporaryDirectory(prefix="fuzz-") as work:
        rows = {"batch mode": batch(inputs, Path(work) / "batch")}
        if not args.skip_network:
            (Path(work) / "net").mkdir()
            rows["network path"] = network(inputs, Path(work) / "net")
    for path, row in rows.items():
        print(f"\n{path}")
        for key, value in row.items():
            print(f"  {key:<45} {value}")


if __name__ == "__main__":
    main()
