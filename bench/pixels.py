#!/usr/bin/env python3
"""Pixel-stage throughput, on CPU or (``--device cuda``) a GPU.

Usage: .venv/bin/python bench/pixels.py [--study 300] [--per-modality 6] [--rounds 3] [--cli] [--queue]
       [--device cpu|cuda|auto] [--backend telea|fill|sd2 --sd2-model DIR]
       .venv/bin/python bench/pixels.py --synthetic 240   (precision: see bench/pixel_precision.py)

1. Per modality: instances (and frames) per second through ``PixelStage`` alone, for generated
   instances with and without burned-in text (CT 512² int16, CR 2048×1680 uint16 MONOCHROME1,
   MR 256² int16, US 640×480 RGB, US cine 24×480×640 RGB, MG 2048×1536). Copying the dataset
   is not timed; decoding, rendering, detection, restoration, verification and encoding are.
   With ``--option``, the default stage and the stage with that option switched take turns on
   the same instances.
2. End to end: a 300-instance 512×512 CT study without text through the pipeline the
   configuration builds (PixelStage + header stage), in process; with ``--cli`` also through
   ``deid-gateway deid IN OUT`` (wall clock, including reading and writing files).
3. With ``--queue``: the same study, every fifth instance with text, through the queue's
   workers in process (SQLite, spool and outbox in a temporary folder): one ``all`` worker,
   against a ``pixels`` worker followed by a ``headers`` worker, each timed on its own.

The first two are medians of ``--rounds`` (default 3); peers timed against each other take turns
to go first, since on a small shared machine the order alone can be worth a tenth.

The detector is the shipped models.inference.TextFinder (models/weights); the machine's load
is printed with the results because the numbers mean little without it.

Issue 37's figure (``deid-gateway deid --jobs 1`` and ``--jobs 2`` on a pinned text-free CT study,
instances/s and CPU time per instance, against a baseline tree) is ``python -m bench.pixel_throughput``.
"""

from __future__ import annotations

import argparse
import copy
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TEXT = ("DOE^JANE  F 62Y", "ID 4471203", "03/14/1961 10:22", "ST MARY HOSPITAL")


def _dataset(modality: str, rows: int, cols: int, frames: int = 1, study: str | None = None) -> FileDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage if modality == "CT" else "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("bench.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study or generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "DOE^JANE", "4471203", "19610314", "F"
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber = "20240101", "120000", "A1"
    ds.Modality, ds.Manufacturer = modality, "ACME"
    ds.Rows, ds.Columns = rows, cols
    if frames > 1:
        ds.NumberOfFrames = frames
    return ds


def _ink(rows: int, cols: int, scale: float) -> np.ndarray:
    ink = np.zeros((rows, cols), np.uint8)
    for i, line in enumerate(TEXT):
        cv2.putText(ink, line, (8, int(20 * scale) + i * int(22 * scale)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.55 * scale, 255, max(1, int(scale)), cv2.LINE_AA)
    return ink.astype(np.float32) / 255.0


def make(modality: str, text: bool, seed: int) -> FileDataset:
    from models.training.synth import backgrounds

    rng = np.random.default_rng(seed)
    if modality in ("CT", "MR"):
        size = 512 if modality == "CT" else 256
        bg = backgrounds.background(rng, "ct" if modality == "CT" else "mr", size, size)
        hu = bg * 2000 - 1024 + rng.normal(0, 8, bg.shape)
        if text:
            a = _ink(size, size, 1.0)
            hu = hu * (1 - a) + 3071 * a
        ds = _dataset(modality, size, size)
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = "0", "1"
        ds.WindowCenter, ds.WindowWidth = "40", "400"
        ds.PixelData = np.clip(np.rint(hu), -1024, 3071).astype(np.int16).tobytes()
        return ds
    if modality in ("CR", "MG"):
        rows, cols = (2048, 1680) if modality == "CR" else (2048, 1536)
        bg = backgrounds.background(rng, "xray" if modality == "CR" else "mammo", rows, cols)
        v = (1 - bg) * 4095 if modality == "CR" else bg * 4095
        if text:
            a = _ink(rows, cols, 3.0)
            v = v * (1 - a) + (0 if modality == "CR" else 4095) * a
        ds = _dataset(modality, rows, cols)
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME1" if modality == "CR" else "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = np.clip(np.rint(v), 0, 4095).astype(np.uint16).tobytes()
        return ds
    # US: RGB, single frame or cine
    frames = 24 if modality == "US-cine" else 1
    rows, cols = 480, 640
    bg = backgrounds.background(rng, "us", rows, cols)
    grey = bg if bg.ndim == 2 else bg.mean(axis=2)
    out = []
    for k in range(frames):
        g = np.roll(grey, 3 * k, axis=1) if k else grey
        rgb = np.repeat((g * 255)[..., None], 3, axis=2)
        if text:
            a = _ink(rows, cols, 1.0)[..., None]
            rgb = rgb * (1 - a) + 255 * a
        out.append(np.clip(np.rint(rgb), 0, 255).astype(np.uint8))
    ds = _dataset("US", rows, cols, frames)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = np.stack(out).tobytes() if frames > 1 else out[0].tobytes()
    return ds


def load_average() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"
    except OSError:
        return "unknown"


def _turns(rounds: int, peers: int) -> list[list[int]]:
    """The order the peers are timed in, round by round: each goes first as often as the others,
    because on a small shared machine whoever runs second inherits warm caches or a busier core."""
    return [[(r + k) % peers for k in range(peers)] for r in range(rounds)]


def bench_modalities(stages: Sequence, per: int, rounds: int = 1) -> list[tuple]:
    """Instances and frames per second for each stage on the same generated instances, per
    modality and content: each stage's median over ``rounds``, the stages taking turns to go
    first. Returns rows of (modality, content, instances, [instances/s], [frames/s], [quarantined])."""
    from gateway.pipeline.stage import InstanceContext, Quarantine

    rows = []
    for modality in ("CT", "MR", "CR", "MG", "US", "US-cine"):
        for text in (False, True):
            n = per if modality not in ("CR", "MG", "US-cine") else max(2, per // 3)
            inputs = [make(modality, text, seed) for seed in range(n)]
            frames = sum(int(ds.get("NumberOfFrames", 1)) for ds in inputs)
            for stage in stages:
                stage(copy.deepcopy(inputs[0]), InstanceContext(original=inputs[0]))  # warm-up
            seconds: list[list[float]] = [[] for _ in stages]
            quarantined = [0] * len(stages)
            for order in _turns(rounds, len(stages)):
                for k in order:
                    copies = [copy.deepcopy(ds) for ds in inputs]  # copying is not timed
                    elapsed = 0.0
                    for original, ds in zip(inputs, copies, strict=True):
                        started = time.perf_counter()
                        try:
                            stages[k](ds, InstanceContext(original=original))
                        except Quarantine:
                            quarantined[k] += 1
                        elapsed += time.perf_counter() - started
                    seconds[k].append(elapsed)
            medians = [statistics.median(s) for s in seconds]
            rows.append((modality, "text" if text else "no text", n, [n / s for s in medians],
                         [frames / s for s in medians], [q // rounds for q in quarantined]))
    return rows


def bench_study(configs: Sequence, n: int, device: str = "cpu", rounds: int = 1) -> list[tuple[float, int]]:
    """Instances per second through the pipeline each configuration builds, on one text-free CT
    study: each configuration's median over ``rounds``, taking turns to go first. Returns
    (instances/s, quarantined) per configuration."""
    from gateway.pipeline.build import build_pipeline
    from gateway.pipeline.stage import Quarantine

    pipelines = [build_pipeline(config, None, b"bench-secret-0123456789abcdef", device=device) for config in configs]
    study = generate_uid()
    inputs = []
    for seed in range(n):
        ds = make("CT", False, seed)
        ds.StudyInstanceUID = study
        ds.InstanceNumber = seed + 1
        inputs.append(ds)
    for pipeline in pipelines:
        pipeline.run(copy.deepcopy(inputs[0]))  # warm-up: models load
    seconds: list[list[float]] = [[] for _ in pipelines]
    quarantined = [0] * len(pipelines)
    for order in _turns(rounds, len(pipelines)):
        for k in order:
            copies = [copy.deepcopy(ds) for ds in inputs]
            started = time.perf_counter()
            for ds in copies:
                try:
                    pipelines[k].run(ds)
                except Quarantine:
                    quarantined[k] += 1
            seconds[k].append(time.perf_counter() - started)
    return [(n / statistics.median(s), q // rounds) for s, q in zip(seconds, quarantined, strict=True)]


def bench_cli(n: int, jobs: int = 1, device: str = "cpu", pixels: bool = True) -> float | None:
    exe = shutil.which("deid-gateway") or str(ROOT / ".venv" / "bin" / "deid-gateway")
    if not Path(exe).exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        study = generate_uid()
        for seed in range(n):
            ds = make("CT", False, seed)
            ds.StudyInstanceUID = study
            ds.save_as(tmp / "in" / f"{seed:04d}.dcm", enforce_file_format=True)
        cfg = tmp / "config.yaml"
        cfg.write_text(f"storage:\n  root: {tmp / 'var'}\npixels:\n  enabled: {str(pixels).lower()}\n  device: {device}\n")
        started = time.perf_counter()
        res = subprocess.run([exe, "deid", str(tmp / "in"), str(tmp / "out"), "--config", str(cfg), "--quiet",
                              "--device", device, "--jobs", str(jobs)], check=False, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if res.returncode not in (0, 1):  # 1: some instances were quarantined (reported below)
            print(res.stdout[-2000:], res.stderr[-2000:], file=sys.stderr)
            return None
        if res.returncode == 1:
            print(f"  deid-gateway: {res.stdout.strip()[-500:]}")
        return n / elapsed


def bench_queue(n: int, device: str = "cpu") -> dict[str, float]:
    """Instances per second through queue workers: one whole-job worker, and the two halves of
    a split deployment (what the GPU host does, and what is left for each CPU host)."""
    from gateway.config import load_config
    from gateway.db import Database
    from gateway.files import hashed_path, sha256_hex, write_durably
    from gateway.ingest.validate import InstanceHeader
    from gateway.pipeline.build import build_pipeline
    from gateway.pipeline.worker import Worker
    from gateway.queue.intake import register_instance
    from gateway.queue.stability import queue_stable_studies

    secret = b"bench-secret-0123456789abcdef"
    study = generate_uid()
    files = []
    for seed in range(n):
        ds = make("CT", seed % 5 == 0, seed)
        ds.StudyInstanceUID = study
        files.append(ds)

    def queued(root: Path):
        config = load_config(None, {"storage": {"root": str(root)}, "database": {"url": f"sqlite:///{root / 'q.db'}"},
                                    "queue": {"stable_after": 0.01}, "pixels": {"enabled": True, "device": device}})
        db = Database(config.database.url)
        db.create_schema()
        with db.session() as session:
            for ds in files:
                buffer = io.BytesIO()
                ds.save_as(buffer, enforce_file_format=True)
                data = buffer.getvalue()
                path = hashed_path(config.storage.spool, sha256_hex(data))
                write_durably(path, data, fsync=False)
                header = InstanceHeader(ds.SOPClassUID, ds.SOPInstanceUID, study, ds.SeriesInstanceUID,
                                        ExplicitVRLittleEndian)
                register_instance(session, secret, header, path, sha256_hex(data), len(data), "BENCH")
        time.sleep(0.02)
        queue_stable_studies(db, config.queue, config.pixels.enabled)
        return config, db

    def timed(config, db, role: str) -> float:
        worker = Worker.from_config(config, db, build_pipeline(config, db, secret, device=device, role=role), role=role)
        if worker.pipeline.instance_stages:  # warm-up: models load
            worker.pipeline.run_instance_stages(copy.deepcopy(files[0]))
        started = time.perf_counter()
        assert worker.run_once()
        return n / (time.perf_counter() - started)

    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        config, db = queued(Path(tmp) / "all")
        rates["all"] = timed(config, db, "all")
        config, db = queued(Path(tmp) / "split")
        rates["pixels"] = timed(config, db, "pixels")
        rates["headers"] = timed(config, db, "headers")
    return rates


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", type=int, default=300, help="instances in the end-to-end CT study")
    parser.add_argument("--per-modality", type=int, default=6)
    parser.add_argument("--cli", action="store_true", help="also time deid-gateway deid IN OUT")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes for --cli")
    parser.add_argument("--queue", action="store_true", help="also time queue workers: whole jobs, and split")
    parser.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu")
    parser.add_argument("--backend", choices=["telea", "fill", "sd2"], default="telea",
                        help="restoration for the per-modality table")
    parser.add_argument("--sd2-model", help="with --backend sd2: a local save_pretrained directory")
    parser.add_argument("--rounds", type=int, default=3,
                        help="time every measurement this many times and report medians; peers measured "
                             "against each other take turns to go first")
    parser.add_argument("--skip-modalities", action="store_true")
    parser.add_argument("--skip-study", action="store_true")
    parser.add_argument("--samples", type=Path, default=None,
                        help="instead: run over a samples folder with INVENTORY.tsv (e.g. ../shared/samples)")
    parser.add_argument("--ocr", action="store_true", help="with --samples: count lines rapidocr reads before/after")
    parser.add_argument("--synthetic", type=int, default=0, metavar="N",
                        help="instead: precision on N held-out synthetic instances (bench/pixel_precision.py): "
                             "changed non-text regions per file, PHI recall, text-free files unchanged, quarantines")
    parser.add_argument("--option", choices=["second_detector", "rotated_text", "verifier", "audit_categories"],
                        default=None,
                        help="also run the per-modality table with this pixels option switched from its "
                             "default (rotated_text, second_detector, verifier and audit_categories "
                             "off), beside the default "
                             "(with --samples: run the samples with it switched)")
    return parser


def print_modalities(stage, optioned, option_name: str | None, per: int, rounds: int) -> None:
    if optioned is not None:
        # the option's peer is the default stage, measured on the same instances in turn with it
        print(f"\n| modality | content | instances | instances/s | with {option_name} | time vs default |")
        print("|---|---|---|---|---|---|")
        for modality, text, n, (ips, with_option), _, _ in bench_modalities([stage, optioned], per, rounds):
            print(f"| {modality} | {text} | {n} | {ips:.1f} | {with_option:.1f} | {ips / with_option:.2f}x |")
        return
    print("\n| modality | content | instances | instances/s | frames/s | quarantined |")
    print("|---|---|---|---|---|---|")
    for modality, text, n, (ips,), (fps,), (q,) in bench_modalities([stage], per, rounds):
        print(f"| {modality} | {text} | {n} | {ips:.1f} | {fps:.1f} | {q} |")


def print_study(config, pixels: dict, args: argparse.Namespace) -> None:
    from gateway.config import GatewayConfig

    # The peer in each pair is the same path with the pixel stage off: the ratio is what
    # looking for burned-in text costs on images that have none.
    headers_only = GatewayConfig.model_validate({"pixels": {**pixels, "enabled": False}})
    (peer, _), (rate, quarantined) = bench_study([headers_only, config], args.study, args.device, args.rounds)
    if quarantined:
        print(f"  {quarantined} of {args.study} text-free instances were quarantined")
    rows = [("in process, header stage only", peer), ("in process, pixel + header stages", rate)]
    if args.cli:
        rows += [(f"deid-gateway deid --jobs {args.jobs}, pixel stage off",
                  bench_cli(args.study, args.jobs, args.device, pixels=False)),
                 (f"deid-gateway deid --jobs {args.jobs}", bench_cli(args.study, args.jobs, args.device))]
    print(f"\nend to end, {args.study} CT 512x512 without text (target: deid-gateway deid >= 60 instances/s;"
          " deid is wall clock over files, start-up included)")
    print("| path | instances/s | time vs pixel stage off |")
    print("|---|---|---|")
    for i, (name, measured) in enumerate(rows):
        pixels_off = rows[i - i % 2][1]  # rows come in pairs: pixel stage off, then on
        ratio = f"{pixels_off / measured:.2f}x" if measured and pixels_off else "n/a"
        print(f"| {name} | {'n/a' if measured is None else f'{measured:.1f}'} | {ratio} |")


def print_queue(study: int, device: str) -> None:
    rates = bench_queue(study, device)
    print(f"\nqueue workers, {study} CT 512x512, every fifth with text (instances/s, one process each):")
    print("| worker | instances/s | time vs all |")
    print("|---|---|---|")
    for role, rate in rates.items():
        print(f"| --role {role} | {rate:.1f} | {rates['all'] / rate:.2f}x |")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    import json
    import logging

    logging.disable(logging.WARNING)
    from gateway.config import GatewayConfig
    from gateway.pixels.config import PixelsConfig
    from gateway.pixels.stage import PixelStage

    pixels = {"enabled": True, "device": args.device, "backend": args.backend}
    if args.sd2_model:
        pixels["sd2"] = {"model": args.sd2_model}
    config = GatewayConfig.model_validate({"pixels": pixels})
    stage = PixelStage(config.pixels, args.device)
    print(f"pixel stage on {stage.device}, backend {args.backend}")
    optioned, option_name = None, None
    if args.option:
        switched = not getattr(PixelsConfig(), args.option)
        option_name = f"{args.option} {'on' if switched else 'off'}"
        optioned = PixelStage(PixelsConfig.model_validate({**pixels, args.option: switched}), args.device)
    if args.synthetic:
        from bench.pixel_precision import SEED, run as precision

        print(json.dumps(precision(args.synthetic, SEED, 3, {k: v for k, v in pixels.items() if k != "device"})[0],
                         indent=2))
        return 0
    if args.samples is not None:
        from bench.pixel_samples import run_samples

        for entry in run_samples(args.samples, optioned or stage, args.ocr):
            print(json.dumps(entry))
        return 0
    print(f"load average before: {load_average()}")
    print(f"medians of {args.rounds} rounds")
    if not args.skip_modalities:
        print_modalities(stage, optioned, option_name, args.per_modality, args.rounds)
    if not args.skip_study:
        print_study(config, pixels, args)
    if args.queue:
        print_queue(args.study, args.device)
    print(f"load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
