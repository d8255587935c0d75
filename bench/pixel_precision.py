#!/usr/bin/env python3
"""Pixel-stage precision on a held-out synthetic set: what the stage changes besides text.

Usage: .venv/bin/python bench/pixel_precision.py [--n 200] [--seed 4242] [--cine-every 3] [--json F]
       (also ``bench/pixels.py --synthetic N``)

The generator (`models.training.synth`, held-out fonts, ``--seed`` pinned) draws every modality
(CT, CR/DX, MR, MG, US, endoscopy, SC, photographs), about a tenth of them without text, half of
them with the graphics scanners draw beside their text (``--graphics``: rulers, calipers, traces,
bars, body markers, arrows, grids; a ruler's numbers are labelled text, its ticks not); every
``--cine-every``-th ultrasound image is also sent as a cine of CINE_FRAMES frames (the same
picture with a little noise of its own per frame, so that every frame is distinct). Each instance
goes through ``PixelStage`` with the default configuration, and its pixels before and after are
compared:

- **changed non-text regions**: the separate regions the stage changed (the union of the boxes it
  reports redacted or solid-filled, all frames of a cine together, 8-connected) that touch no
  ground-truth text line (PHI or not). The main precision figure: a ruler's tick, a caliper or a
  trace erased is one such region each;
- **PHI recall**: ground-truth PHI lines covered at least ``models.metrics.COVER`` by the regions
  the stage reports (redacted and solid-filled, dilated as the mask is); a quarantined instance
  forwards nothing, so its lines count as covered, and it is counted apart;
- **text-free files byte-identical**, **quarantined** instances (with the fixed reason), and the
  stage's seconds per instance;
- with ``--residual``: **PHI tokens still readable** (3 characters or more) to an independent OCR
  (rapidocr) around each PHI line of the output's first frame. Slow (the 254-instance set took over
  50 minutes on a loaded 2-core machine) and a weak reader on such crops: on the first 12 instances'
  originals it reads 9 of their 75 tokens, so it compares runs, it does not prove a redaction.

Coordinates and counts only: no text is printed.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: The held-out set's default seed: neither training's, nor the test (1000) or validation (500) sets'.
SEED = 4242
CINE_FRAMES = 6
#: Share of the images with the graphics scanners draw beside their text (`models.training.synth.graphics`).
GRAPHICS = 0.5
MODALITY_TAG = {"ct": "CT", "cr": "CR", "mr": "MR", "mg": "MG", "us": "US", "endo": "ES", "sc": "SC", "photo": "XC"}


@dataclass
class Item:
    name: str
    ds: FileDataset
    text_boxes: list[tuple[int, int, int, int]]
    phi_boxes: list[tuple[int, int, int, int]]
    phi_texts: list[str] = field(default_factory=list)


def to_dataset(pixels: np.ndarray, tags, modality: str) -> FileDataset:
    """A DICOM instance of a synthetic sample's stored pixels (HxW, HxWx3, or frames of either)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("synthetic.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "DOE^JANE", "4471203", "19610314", "F"
    ds.Modality = MODALITY_TAG.get(modality, "OT")
    for elem in tags:
        ds.add(copy.deepcopy(elem))
    colour = pixels.shape[-1] == 3 and pixels.dtype == np.uint8 and str(tags.get("PhotometricInterpretation")) == "RGB"
    frames = pixels.shape[0] if pixels.ndim == (4 if colour else 3) else 1
    ds.Rows, ds.Columns = pixels.shape[-3:-1] if colour else pixels.shape[-2:]
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.SamplesPerPixel = 3 if colour else 1
    if colour:
        ds.PlanarConfiguration = 0
    bits = 8 if pixels.dtype == np.uint8 else 16
    ds.BitsAllocated = bits
    ds.BitsStored = int(tags.get("BitsStored", bits))
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if pixels.dtype == np.int16 else 0
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    return ds


def synthetic_items(n: int, seed: int = SEED, cine_every: int = 3, graphics: float = GRAPHICS) -> list[Item]:
    """``n`` generated instances (held-out fonts, scanner graphics on a share ``graphics`` of them),
    plus a cine of every ``cine_every``-th ultrasound."""
    from models.training.synth import SynthConfig, generate

    config = SynthConfig(font_split="test", graphics=graphics)
    items, us_seen = [], 0
    for i in range(n):
        s = generate(seed, i, config)
        text = [tuple(int(v) for v in line.box) for line in s.lines]
        phi = [tuple(int(v) for v in line.box) for line in s.lines if line.phi]
        words = [line.text for line in s.lines if line.phi]
        items.append(Item(f"{i:04d}-{s.modality}", to_dataset(s.pixels, s.ds, s.modality), text, phi, words))
        if s.modality == "us" and cine_every and us_seen % cine_every == 0:
            rng = np.random.default_rng([seed, i, 17])
            noise = rng.integers(-2, 3, (CINE_FRAMES, *s.pixels.shape))
            frames = np.clip(s.pixels[None].astype(np.int16) + noise, 0, 255).astype(np.uint8) \
                if s.pixels.dtype == np.uint8 else np.repeat(s.pixels[None], CINE_FRAMES, axis=0)
            items.append(Item(f"{i:04d}-us-cine", to_dataset(frames, s.ds, "us"), text, phi, words))
        if s.modality == "us":
            us_seen += 1
    return items


def changed_regions(boxes: list[tuple[int, int, int, int]], rows: int, cols: int) -> list[tuple[int, int, int, int]]:
    """The separate regions ``boxes`` (the regions the stage redacted or filled, in any frame) make:
    bounding boxes of the connected parts of their union. Counting the changed pixels themselves
    would split one restored box into the fragments where the restoration happened to keep a value."""
    from models.metrics import union_mask

    count, _, stats, _ = cv2.connectedComponentsWithStats(union_mask(boxes, rows, cols).astype(np.uint8), connectivity=8)
    return [(int(x), int(y), int(x + w), int(y + h)) for x, y, w, h, _ in stats[1:count]]


def _touches(box, boxes) -> bool:
    x0, y0, x1, y1 = box
    return any(x0 < b[2] and b[0] < x1 and y0 < b[3] and b[1] < y1 for b in boxes)


def readable_phi(result, item: Item, reader) -> int:
    """PHI tokens (3 characters or more) an independent OCR (rapidocr) still reads around the PHI
    lines of ``result``'s first frame: what a redaction left behind."""
    from gateway.pixels.decode import decode
    from gateway.pixels.render import render_frame

    decoded = decode(result)
    image = render_frame(decoded.frames[0], result, "RGB" if decoded.layout == "rgb" else decoded.photometric)
    rows, cols = image.shape[:2]
    left = 0
    for (x0, y0, x1, y1), words in zip(item.phi_boxes, item.phi_texts, strict=True):
        m = max(4, (y1 - y0) // 2)
        read = " ".join(reader(image[max(0, y0 - m):min(rows, y1 + m), max(0, x0 - m):min(cols, x1 + m)])).upper()
        left += sum(len(t) >= 3 and t.upper() in read for t in words.replace("^", " ").split())
    return left


def measure(stage, item: Item, reader=None) -> dict:
    """Run ``stage`` on ``item`` and say what it changed, where, and how long it took (and with an
    OCR ``reader``, how many PHI tokens it still reads)."""
    from gateway.pipeline.stage import InstanceContext, Quarantine
    from models.metrics import COVER, coverage, union_mask

    ds = item.ds
    rows, cols = int(ds.Rows), int(ds.Columns)
    ctx = InstanceContext(original=ds)
    out = {"file": item.name, "text": bool(item.text_boxes), "phi": len(item.phi_boxes)}
    started = time.perf_counter()
    try:
        result = stage(copy.deepcopy(ds), ctx)
    except Quarantine as q:
        out.update(seconds=time.perf_counter() - started, quarantined=q.reason, phi_found=len(item.phi_boxes),
                   non_text_regions=0, identical=False)
        return out
    out["seconds"] = time.perf_counter() - started
    out["identical"] = result.PixelData == ds.PixelData
    details = ctx.reports[0].details if ctx.reports else {}
    pad = stage.config.dilate
    boxes = [tuple(r["box"]) for r in details.get("regions", []) + details.get("fallback_regions", [])]
    redacted = union_mask([(x0 - pad, y0 - pad, x1 + pad, y1 + pad) for x0, y0, x1, y1 in boxes], rows, cols)
    out["phi_found"] = sum(coverage(b, redacted) >= COVER for b in item.phi_boxes)
    regions = [] if out["identical"] else changed_regions(boxes, rows, cols)
    out["non_text_regions"] = sum(not _touches(b, item.text_boxes) for b in regions)
    out["regions_reported"] = len(boxes)
    if reader is not None and item.phi_boxes:
        out["phi_tokens_readable"] = readable_phi(result, item, reader)
    out["fallback_regions"] = len(details.get("fallback_regions", []))
    return out


def summary(rows: list[dict]) -> dict:
    with_text = [r for r in rows if r["text"]]
    free = [r for r in rows if not r["text"]]
    phi = sum(r["phi"] for r in rows)
    by_kind = Counter()
    for r in rows:
        by_kind[r["file"].split("-", 1)[1]] += r["non_text_regions"]
    return {
        "files": len(rows), "files_with_text": len(with_text), "text_free_files": len(free),
        "phi_boxes": phi, "phi_recall": sum(r["phi_found"] for r in rows) / phi if phi else None,
        "non_text_regions": sum(r["non_text_regions"] for r in rows),
        "non_text_regions_per_file_with_text": sum(r["non_text_regions"] for r in with_text) / max(1, len(with_text)),
        "non_text_regions_by_kind": dict(sorted(by_kind.items())),
        "text_free_identical": sum(bool(r["identical"]) for r in free),
        "phi_tokens_readable": sum(r.get("phi_tokens_readable", 0) for r in rows),
        "files_with_phi_readable": sum(bool(r.get("phi_tokens_readable")) for r in rows),
        "quarantined": sum("quarantined" in r for r in rows),
        "quarantine_reasons": dict(Counter(r["quarantined"] for r in rows if "quarantined" in r)),
        "seconds_per_file_mean": statistics.fmean(r["seconds"] for r in rows),
        "seconds_per_file_median": statistics.median(r["seconds"] for r in rows),
    }


def run(n: int, seed: int, cine_every: int, pixels: dict | None = None, graphics: float = GRAPHICS,
        residual: bool = False) -> tuple[dict, list[dict]]:
    import logging

    logging.disable(logging.WARNING)
    from gateway.config import GatewayConfig
    from gateway.pixels.stage import PixelStage

    config = GatewayConfig.model_validate({"pixels": {"enabled": True, "device": "cpu", **(pixels or {})}})
    stage = PixelStage(config.pixels, "cpu")
    items = synthetic_items(n, seed, cine_every, graphics)
    reader = None
    if residual:
        from models.training.eval_public import ResidualReader

        reader = ResidualReader()
    measure(stage, items[0])  # warm-up: the models load
    rows = [measure(stage, item, reader) for item in items]
    return summary(rows), rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="generated instances (cines come on top)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--cine-every", type=int, default=3, help="a cine of every k-th ultrasound image (0: none)")
    parser.add_argument("--graphics", type=float, default=GRAPHICS, help="share of images with scanner graphics")
    parser.add_argument("--no-rotated-text", dest="rotated_text", action="store_false",
                        help="with pixels.rotated_text off (it is on by default since looks-9)")
    parser.add_argument("--residual", action="store_true", help="also count PHI tokens rapidocr still reads after")
    parser.add_argument("--json", type=Path, default=None, help="also write the summary and every file's row")
    args = parser.parse_args(argv)
    result, rows = run(args.n, args.seed, args.cine_every, None if args.rotated_text else {"rotated_text": False},
                       args.graphics, args.residual)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"summary": result, "files": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
