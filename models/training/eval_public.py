"""(b) and (c): the public samples, for `python -m models.training.evaluate --samples DIR`.

(b) The JohnSnowLabs de-identification files have ground-truth boxes: their values are PHI, their
keys other text. (c) The other public samples are files with visible text (what an independent
OCR, rapidocr when installed, still reads after masking) and files without (false regions). The
samples folder is only read.
"""

from __future__ import annotations

import csv
import json
import time
import warnings
from pathlib import Path

import numpy as np

from models.inference import TextFinder
from models.metrics import Counts, false_predictions, score
from models.phi import KEEP_SAFE_POLICY, Identifiers, classify, short_side
from models.reading import cer
from models.render import dataset_frame, to_gray
from models.training.eval_synthetic import read_crops, region_boxes
from models.training.train_recognizer import crop_line

#: The JohnSnowLabs files' folder in the samples folder.
JSL = "JohnSnowLabs__dicom-deid-dataset"


def wrapped_value(annotation: dict) -> bool:
    """Whether a value sits on a row below its key: a long institution name wrapped onto a second
    line, of which the dataset boxes only the last while its label holds the whole name."""
    key, value = annotation["key"].get("bbox"), annotation["value"].get("bbox")
    return bool(key and value) and value[1] >= key[3] - 1


def _labelled_text_cer(finder: TextFinder, gray: np.ndarray, annotations: list[dict]) -> tuple[int, int, int]:
    """(edit distance, characters, boxes left out) of the recogniser on one JohnSnowLabs file's
    labelled keys and values: real burned-in text, against the synthetic (a). Boxes with nothing
    visible in them (``has_contrast``) and wrapped values (``wrapped_value``) are left out, and a key's
    colon, which its box holds but its label does not, is not counted."""
    crops, truths, keys, left_out = [], [], [], 0
    for a in annotations:
        for part in ("key", "value"):
            text, box = a[part].get("text", "").strip(), a[part].get("bbox")
            if not text or not box:
                continue
            if not has_contrast(gray, box) or (part == "value" and wrapped_value(a)):
                left_out += 1
                continue
            crops.append(crop_line(gray, tuple(int(v) for v in box)))
            truths.append(text)
            keys.append(part == "key")
    pairs = [cer(p.rstrip(": ") if key else p, t) for p, t, key in zip(read_crops(finder, crops), truths, keys)]
    return sum(e for e, _ in pairs), sum(c for _, c in pairs), left_out


def _crop(image: np.ndarray, box, context: int) -> np.ndarray:
    x0, y0, x1, y1 = box
    h, w = image.shape[:2]
    return image[max(0, y0 - context):min(h, y1 + context), max(0, x0 - context):min(w, x1 + context)]


def read_dicom(path: Path):
    """A sample's dataset and its first frame as a display image (None when it has no pixel data).
    The public samples include files without a preamble or with odd tags: they are read as they are."""
    import pydicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, force=True)
        if "PixelData" not in ds:
            return ds, None
        return ds, dataset_frame(ds)


#: Pixels of context around a false region when the second reader looks at it.
READ_CONTEXT = 8


def jsl(finder: TextFinder, samples: Path, reader: "ResidualReader | None" = None) -> dict:
    """(b) JohnSnowLabs files: ground-truth key/value boxes; the values are the PHI.

    The ground truth boxes only the key/value pairs of each file; other burned-in text ("Portable",
    "Semi-Upright", lines of a header block) is real text a redactor should remove but counts
    against precision. With a ``reader`` (rapidocr), each false region is shown to it, and those it
    reads as text are counted apart: a measure of what the labels leave out, reported beside the
    plain precision, never instead of it."""
    root = samples / JSL
    all_text, phi, phi_keep, phi_visible = Counts(), Counts(), Counts(), Counts()
    per_file, times = [], []
    false_regions = read_as_text = 0
    cer_errors = cer_chars = cer_left_out = 0
    for gt_path in sorted((root / "ground_truth").glob("*.json")):
        gt = json.loads(gt_path.read_text())
        ds, image = read_dicom(root / gt["filename"])
        if image is None:
            continue
        h, w = image.shape[:2]
        phi_boxes = [tuple(a["value"]["bbox"]) for a in gt["annotation"] if a["value"].get("text", "").strip() and a["value"].get("bbox")]
        key_boxes = [tuple(a["key"]["bbox"]) for a in gt["annotation"] if a["key"].get("text", "").strip() and a["key"].get("bbox")]
        text_boxes = phi_boxes + key_boxes
        t = time.perf_counter()
        regions = finder.detect(image)
        times.append(time.perf_counter() - t)
        a = score(text_boxes, region_boxes(regions), (h, w))
        if reader is not None and reader.engine is not None:
            missed_labels = false_predictions(region_boxes(regions), text_boxes, (h, w))
            false_regions += len(missed_labels)
            read_as_text += sum(bool(reader(_crop(image, box, READ_CONTEXT))) for box in missed_labels)
        p = score(phi_boxes, region_boxes(regions), (h, w), text_gt=text_boxes)
        all_text.add(a)
        phi.add(p)
        gray = to_gray(image)
        phi_visible.add(score([b for b in phi_boxes if has_contrast(gray, b)], region_boxes(regions), (h, w), text_gt=text_boxes))
        if finder.recognizer is not None:
            ident = Identifiers.from_dataset(ds)
            readings = finder.readings(image, regions)
            redacted = [r.box for r, (s, c) in zip(regions, readings) if not KEEP_SAFE_POLICY.keeps(s, c, short_side(r), ident)]
            phi_keep.add(score(phi_boxes, redacted, (h, w)))
            e, c, left_out = _labelled_text_cer(finder, gray, gt["annotation"])
            cer_errors, cer_chars, cer_left_out = cer_errors + e, cer_chars + c, cer_left_out + left_out
        per_file.append({"file": gt["filename"][:40], "phi_gt": p.gt, "phi_found": p.found, "pred": a.pred,
                         "false": a.pred - a.correct, "min_cov": round(min(p.coverages), 3) if p.coverages else None})
    unlabelled = None
    if reader is not None and reader.engine is not None:
        unlabelled = {"false_regions": false_regions, "read_as_text": read_as_text,
                      "phi_precision_counting_them": (phi.correct + read_as_text) / phi.pred if phi.pred else None}
    return {"images": len(per_file), "all_text": all_text.row(), "phi": phi.row(), "phi_visible": phi_visible.row(),
            "phi_keep_safe_policy": phi_keep.row() if finder.recognizer is not None else None,
            "unlabelled_text": unlabelled,
            "cer": cer_errors / cer_chars if cer_chars else None, "cer_characters": cer_chars,
            "cer_boxes_left_out": cer_left_out,
            "det_seconds_median": float(np.median(times)) if times else None, "files": per_file}


#: Grey-level spread (5th to 95th percentile) below which a ground-truth box shows no readable text.
MIN_BOX_CONTRAST = 24


def has_contrast(gray: np.ndarray, box) -> bool:
    """Some JohnSnowLabs values are drawn white on saturated white: nothing there can be read or found."""
    x0, y0, x1, y1 = (max(0, int(v)) for v in box)
    patch = gray[y0:y1, x0:x1]
    if patch.size == 0:
        return False
    lo, hi = np.percentile(patch, (5, 95))
    return float(hi - lo) >= MIN_BOX_CONTRAST


def _inventory(samples: Path) -> list[dict]:
    with open(samples / "INVENTORY.tsv", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


class ResidualReader:
    """Independent OCR (rapidocr) used to check what is still readable after masking."""

    def __init__(self):
        try:
            from rapidocr import RapidOCR

            self.engine = RapidOCR(params={"Global.use_cls": False, "Global.log_level": "critical"})
        except Exception:
            self.engine = None

    def __call__(self, image: np.ndarray) -> list[str]:
        if self.engine is None:
            return []
        rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, 2)
        result = self.engine(np.ascontiguousarray(rgb[..., ::-1]))
        return [t for t, s in zip(result.txts or (), result.scores or ()) if s > 0.6 and len(t.strip()) >= 2]


def others(finder: TextFinder, samples: Path, check_residual: bool = True) -> dict:
    """(c) Other samples: residual readable PHI after masking text files; false regions on no-text files."""
    reader = ResidualReader() if check_residual else None
    text_files, clean_files = [], []
    for row in _inventory(samples):
        if row["path"].startswith(JSL):
            continue
        visible = row.get("has_visible_text", "").strip().lower()
        if visible not in ("yes", "no"):
            continue
        try:
            ds, image = read_dicom(samples / row["path"])
        except Exception as exc:  # undecodable transfer syntax etc.
            (text_files if visible == "yes" else clean_files).append({"file": row["path"], "error": type(exc).__name__})
            continue
        if image is None:
            continue
        regions = finder.detect(image)
        if visible == "no":
            clean_files.append({"file": row["path"], "regions": len(regions)})
            continue
        masked = image.copy()
        for r in regions:
            masked[r.y0:r.y1, r.x0:r.x1] = 0
        ident = Identifiers.from_dataset(ds)
        entry = {"file": row["path"], "regions": len(regions)}
        if finder.recognizer is not None:
            cats = [classify(t, ident) for t in finder.read(image, regions)]
            entry["categories"] = {c: cats.count(c) for c in sorted(set(cats))}
        if reader is not None and reader.engine is not None:
            before = reader(image)
            after = reader(masked)
            residual = [(t, classify(t, ident)) for t in after]
            entry["ocr_before"] = len(before)
            entry["residual"] = residual
            entry["residual_phi"] = [t for t, c in residual if c not in ("safe", "other")]
        text_files.append(entry)
    decoded = [f for f in clean_files if "regions" in f]
    zero = sum(f["regions"] == 0 for f in decoded)
    return {"text_files": text_files, "clean_files": clean_files,
            "clean_zero_detection_share": zero / len(decoded) if decoded else None}
