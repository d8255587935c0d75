#!/usr/bin/env python3
"""``deid-gateway deid`` throughput on text-free CT, the figure issue 37 sets a target for.

Usage: .venv/bin/python -m bench.pixel_throughput [--n 300] [--rounds 3] [--jobs 1 2]
       [--baseline DIR] [--pixels-off]

A pinned set of ``--n`` CT instances (512x512, signed 16 bit, no burned-in text; the generator of
``bench.pixels`` with seeds 0..n-1 and fixed UIDs) goes through ``deid-gateway deid --jobs J``
in a fresh process, wall clock from start to exit (start-up, reading, both stages, writing), for
each ``--jobs``. With ``--baseline DIR`` (a copy of the ``gateway`` and ``models`` packages, e.g.
taken before a change) the same command also runs from that tree, the two taking turns to go
first in each round, so a change is measured against the code it replaces on the same load.

Prints, per tree and jobs, the median instances/s over the rounds and their spread (min-max): on
a small machine shared with other work the spread says how far to trust a difference. Also the
CPU time per instance (user and system, every process of the run, start-up included), which
other work on the machine disturbs much less than the wall clock: on an idle machine,
``--jobs 2`` cannot beat two cores' worth of it.

Where the kernel groups processes by session (``/proc/sys/kernel/sched_autogroup_enabled``, on
in the shared development machine), each busy session gets an equal share of the cores however
many processes it runs: with other sessions busy the run gets a fraction of the two cores, and
its wall-clock figure falls with their number, ``--jobs 2`` then being no faster than ``--jobs 1``.
There, compare trees by the CPU time, or by wall clock only within one run of this benchmark.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UID_ROOT = "1.2.826.0.1.3680043.8.498.37"

#: The issue's target for ``deid --jobs 2`` on the 2-core machine.
TARGET = 60.0


def write_study(folder: Path, n: int) -> None:
    """``n`` text-free CT instances with pinned content and UIDs, as ``folder/NNNN.dcm``."""
    from bench.pixels import make

    folder.mkdir(parents=True, exist_ok=True)
    for seed in range(n):
        ds = make("CT", False, seed)
        ds.StudyInstanceUID = f"{UID_ROOT}.1"
        ds.SeriesInstanceUID = f"{UID_ROOT}.2"
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{UID_ROOT}.3.{seed + 1}"
        ds.InstanceNumber = seed + 1
        ds.save_as(folder / f"{seed:04d}.dcm", enforce_file_format=True)


def run_deid(tree: Path, in_dir: Path, out_dir: Path, config: Path, jobs: int) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user and system, all its processes) ``deid-gateway deid``
    takes when run from ``tree`` (its packages first on the path)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "gateway", "deid", str(in_dir), str(out_dir), "--config", str(config),
                          "--quiet", "--device", "cpu", "--jobs", str(jobs)],
                         cwd=tree, env=env, check=False, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if res.returncode != 0:  # 1: something was quarantined, which a text-free CT study must not be
        raise RuntimeError(f"deid from {tree} exited {res.returncode}: {res.stdout[-500:]} {res.stderr[-1500:]}")
    return elapsed, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="instances in the study")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--baseline", type=Path, default=None,
                        help="a tree holding the gateway and models packages to measure beside this one")
    parser.add_argument("--pixels-off", action="store_true", help="with the pixel stage off (header stage only)")
    args = parser.parse_args(argv)

    from bench.pixels import load_average

    trees = [("this tree", ROOT)] + ([("baseline", args.baseline.resolve())] if args.baseline else [])
    runs: dict[tuple[str, int], list[tuple[float, float]]] = {(name, j): [] for name, _ in trees for j in args.jobs}
    print(f"load average before: {load_average()}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_study(tmp / "in", args.n)
        config = tmp / "config.yaml"
        config.write_text(f"storage:\n  root: {tmp / 'var'}\n"
                          f"pixels:\n  enabled: {str(not args.pixels_off).lower()}\n  device: cpu\n")
        for r in range(args.rounds):
            for jobs in args.jobs:
                order = trees[r % len(trees):] + trees[:r % len(trees)]  # each tree goes first in turn
                for name, tree in order:
                    out = tmp / f"out-{r}-{jobs}-{name.replace(' ', '_')}"
                    runs[(name, jobs)].append(run_deid(tree, tmp / "in", out, config, jobs))
    print(f"\n{args.n} CT 512x512 without text, pixel stage {'off' if args.pixels_off else 'on'}, "
          f"medians of {args.rounds} rounds (target with the pixel stage on, --jobs 2: >= {TARGET:.0f}/s)")
    print("| tree | --jobs | instances/s (median) | min-max | CPU ms per instance (median) | min-max |")
    print("|---|---|---|---|---|---|")
    for (name, jobs), measured in runs.items():
        rates = sorted(args.n / wall for wall, _ in measured)
        cpu = sorted(1000 * c / args.n for _, c in measured)
        print(f"| {name} | {jobs} | {statistics.median(rates):.1f} | {rates[0]:.1f}-{rates[-1]:.1f} "
              f"| {statistics.median(cpu):.1f} | {cpu[0]:.1f}-{cpu[-1]:.1f} |")
    print(f"load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
