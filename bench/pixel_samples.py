"""The pixel stage over a folder of real samples (``bench/pixels.py --samples DIR``), a row each.

Runs the stage on every file the folder's ``INVENTORY.tsv`` lists, with visible text and
without, and says what happened: regions found, verification, fallbacks, quarantine; for the
files with JSL ground truth, how many of its boxes the redaction covers; and with ``--ocr``, how
many text lines a second reader (rapidocr) finds before and after. Coordinates and counts only:
no text read from a file is printed.
"""

from __future__ import annotations

import copy
import csv
import json
import time
from pathlib import Path

import numpy as np

GROUND_TRUTH = Path("JohnSnowLabs__dicom-deid-dataset") / "ground_truth"

#: A ground-truth box counts as covered when this much of it is inside the redaction mask.
COVERED = 0.9


def run_samples(folder: Path, stage, with_ocr: bool) -> list[dict]:
    """One dict per row of ``folder/INVENTORY.tsv``."""
    with open(folder / "INVENTORY.tsv", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    reader = _second_reader() if with_ocr else None
    return [_sample(folder, row, stage, reader) for row in rows]


def _second_reader():
    try:
        from gateway.pixels.finders import RapidOcrFinder

        return RapidOcrFinder()
    except Exception:  # noqa: BLE001 - optional second reader
        return None


def _lines_read(reader, ds) -> int:
    from gateway.pixels.decode import decode
    from gateway.pixels.render import render_frame

    decoded = decode(ds)
    image = render_frame(decoded.frames[0], ds, "RGB" if decoded.layout == "rgb" else None)
    result = reader._engine(reader._bgr(image))
    return sum(1 for text in (getattr(result, "txts", None) or ()) if len(text.strip()) >= 2)


def _sample(folder: Path, row: dict, stage, reader) -> dict:
    from pydicom import dcmread

    from gateway.pipeline.stage import InstanceContext, Quarantine

    path = folder / row["path"]
    try:
        ds = dcmread(path, force=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a row of the table
        return {"file": row["path"], "text": row["has_visible_text"], "result": f"unreadable {type(exc).__name__}"}
    entry = {"file": row["path"], "text": row["has_visible_text"], "pi": row["PhotometricInterpretation"],
             "syntax": str(ds.file_meta.get("TransferSyntaxUID", "?"))}
    ctx = InstanceContext(original=ds)
    started = time.perf_counter()
    try:
        result = stage(copy.deepcopy(ds), ctx)
    except Quarantine as q:
        entry["seconds"] = round(time.perf_counter() - started, 2)
        entry["result"] = f"quarantined: {q.reason}"
        if ctx.reports:
            entry["regions"] = len(ctx.reports[0].details.get("regions", []))
        return entry
    entry["seconds"] = round(time.perf_counter() - started, 2)
    details = ctx.reports[0].details if ctx.reports else {}
    entry.update(_outcome(ds, result, details, ctx, reader))
    truth = folder / GROUND_TRUTH / (path.stem + ".json")
    if truth.exists() and details.get("regions") is not None:
        entry["gt_boxes_covered"] = _covered(truth, ds, details, stage.config.dilate)
    return entry


def _outcome(ds, result, details: dict, ctx, reader) -> dict:
    if not ctx.reports:
        return {"result": "no pixel data: passed untouched"}
    if not details.get("regions"):
        same = result.get("PixelData") == ds.get("PixelData")
        return {"result": "unchanged" + (" (bytes identical)" if same else " (BYTES CHANGED)")}
    outcome = {"result": f"redacted, verification {details['verification']}", "regions": len(details["regions"]),
               "fallbacks": len(details.get("fallback_regions", []))}
    if reader is not None:
        outcome["ocr_lines_before_after"] = (_lines_read(reader, ds), _lines_read(reader, result))
    return outcome


def _covered(truth: Path, ds, details: dict, pad: int) -> str:
    """'covered/wanted': the ground truth's boxes (keys and values that hold text) inside the
    redaction mask, which is the regions' boxes dilated by ``pad``."""
    boxes = json.loads(truth.read_text())["annotation"]
    wanted = [a[part]["bbox"] for a in boxes for part in ("value", "key")
              if a[part].get("text", "").strip() and a[part].get("bbox")]
    redacted = np.zeros((int(ds.Rows), int(ds.Columns)), bool)
    for region in details["regions"] + details.get("fallback_regions", []):
        x0, y0, x1, y1 = region["box"]
        redacted[max(0, y0 - pad):y1 + pad, max(0, x0 - pad):x1 + pad] = True
    covered = sum(1 for x0, y0, x1, y1 in wanted
                  if redacted[y0:y1, x0:x1].size and redacted[y0:y1, x0:x1].mean() >= COVERED)
    return f"{covered}/{len(wanted)}"
