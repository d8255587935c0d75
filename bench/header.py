#!/usr/bin/env python3
"""Header de-identification throughput: this engine vs dicognito vs pydicom's ``deid``.

Usage: .venv/bin/python bench/header.py [--rounds 3] [--profile basic]

The corpus is every DICOM file pydicom ships (with pydicom-data: the full set), read into
memory once; DICOMDIRs are left out (the gateway quarantines them). Each round gives every
engine a fresh deep copy of every dataset (copying is not timed) and times the
de-identification calls only, in one process. Engines take turns within a round so that
machine load affects them alike. The table shows, per engine, the median over rounds of
instances per second, the median per-instance time, and the ratio to dicognito.
"""

from __future__ import annotations

import argparse
import copy
import logging
import statistics
import sys
import time
import warnings
from collections.abc import Callable

import pydicom
from pydicom.data import get_testdata_files

DICOMDIR = "1.2.840.10008.1.3.10"


def load_corpus() -> list[pydicom.Dataset]:
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in sorted(get_testdata_files()):
            try:
                ds = pydicom.dcmread(path)
            except Exception:  # noqa: BLE001 - not DICOM
                continue
            if str(getattr(ds, "file_meta", {}).get("MediaStorageSOPClassUID", "")) == DICOMDIR:
                continue
            out.append(ds)
    return out


def gateway_engine(profile: str) -> Callable[[pydicom.Dataset], object]:
    from gateway.config import load_config
    from gateway.deid.stage import HeaderStage
    from gateway.pipeline.stage import InstanceContext

    stage = HeaderStage(load_config().deid, profile, b"bench-secret-0123456789abcdef")

    def run(ds: pydicom.Dataset) -> object:
        return stage(ds, InstanceContext(original=ds))

    return run


def dicognito_engine() -> Callable[[pydicom.Dataset], object]:
    from dicognito.anonymizer import Anonymizer

    anonymizer = Anonymizer(seed="bench")
    return anonymizer.anonymize


def deid_engine() -> Callable[[pydicom.Dataset], object]:
    from deid.config import DeidRecipe
    from deid.dicom.parser import DicomParser

    logging.getLogger("deid").setLevel(logging.ERROR)
    recipe = DeidRecipe()

    def run(ds: pydicom.Dataset) -> object:
        parser = DicomParser(ds, recipe=recipe)
        parser.parse(remove_private=True)
        return parser.dicom

    return run


def time_engine(run: Callable, corpus: list[pydicom.Dataset]) -> tuple[float, list[float], int]:
    copies = [copy.deepcopy(ds) for ds in corpus]
    per_instance, failures = [], 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        for ds in copies:
            t0 = time.perf_counter()
            try:
                run(ds)
            except Exception:  # noqa: BLE001 - some engines reject some files; counted
                failures += 1
            per_instance.append(time.perf_counter() - t0)
        total = time.perf_counter() - start
    return total, per_instance, failures


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", default="basic")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)

    corpus = load_corpus()
    engines: dict[str, Callable] = {f"deid-gateway ({args.profile})": gateway_engine(args.profile)}
    for name, factory in (("dicognito", dicognito_engine), ("pydicom deid", deid_engine)):
        try:
            engines[name] = factory()
        except ImportError as exc:
            print(f"{name}: not installed ({exc.name}); pip install dicognito deid", file=sys.stderr)

    rates: dict[str, list[float]] = {name: [] for name in engines}
    latencies: dict[str, list[float]] = {name: [] for name in engines}
    failures: dict[str, int] = {name: 0 for name in engines}
    for _ in range(args.rounds):
        for name, run in engines.items():
            total, per_instance, failed = time_engine(run, corpus)
            rates[name].append(len(corpus) / total)
            latencies[name].extend(per_instance)
            failures[name] = failed

    reference = statistics.median(rates["dicognito"]) if rates.get("dicognito") else None
    print(f"corpus: {len(corpus)} instances (pydicom test files), {args.rounds} rounds, one process")
    header = f"{'engine':<26} {'inst/s (median)':>16} {'ms/inst (median)':>17} {'failed':>7} {'vs dicognito':>13}"
    print(header)
    print("-" * len(header))
    for name in engines:
        rate = statistics.median(rates[name])
        latency = statistics.median(latencies[name]) * 1000
        ratio = f"{rate / reference:.2f}x" if reference else "n/a"
        print(f"{name:<26} {rate:>16.1f} {latency:>17.3f} {failures[name]:>7} {ratio:>13}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
