"""Evaluate the shipped text finder.

    python -m models.evaluate --samples ../shared/samples [--n-synth 200] [--json /tmp/eval.json]

(a) synthetic test set: another seed and only font families held out of training;
(b) JohnSnowLabs de-id files with ground-truth boxes (values are PHI, keys are other text);
(c) the other public samples: files with visible text (residual text after masking, read by an
    independent OCR when rapidocr is installed) and files without text (false regions).
Also the recogniser's CER on ground-truth lines of (a), and on (b)'s labelled keys and values (real
burned-in text).  The samples folder is only read.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch

from models.inference import TextFinder
from models.metrics import COVER, Counts, false_predictions, score
from models.phi import KEEP_SAFE_POLICY, Identifiers, classify, short_side
from models.reading import cer, prepare_line
from models.render import dataset_frame, to_gray
from models.synth import SynthConfig, generate
from models.train_recognizer import crop_line, upright

JSL = "JohnSnowLabs__dicom-deid-dataset"
TEST_SEED = 1000
#: The validation set the post-processing and the looks were chosen on: another seed, training fonts.
VALIDATION_SEED = 500
#: Lines whose ink is at least this tall are reported separately (4-7 px text is hard even to read by eye).
LEGIBLE_PX = 10
#: Text-height bands (px, lower bound inclusive) the CER is also reported in: most errors are on the smallest text.
CER_BANDS = ((0, 8), (8, 10), (10, 16), (16, 10_000))


def _boxes(regions):
    return [r.box for r in regions]


def _text_height(box) -> int:
    """A line's height as it reads: the short side, so that a 90° line counts by its letters."""
    x0, y0, x1, y1 = box
    return min(x1 - x0, y1 - y0)


def _band(height: int) -> int:
    return next(k for k, (lo, hi) in enumerate(CER_BANDS) if lo <= height < hi)


def _band_name(band: tuple[int, int]) -> str:
    lo, hi = band
    return f"{lo}-{hi - 1}px" if hi < 10_000 else f">={lo}px"


def synthetic(finder: TextFinder, n: int, seed: int = TEST_SEED, fonts: str = "test", overflow: float = 0.0) -> dict:
    """(a) Detection on held-out-font synthetic images, and recogniser CER on their true lines
    (``fonts="train"`` and VALIDATION_SEED: the validation set). ``overflow``: the share of greyscale
    images drawn on an overflowed background (`SynthConfig.overflow`), a set of its own."""
    config = SynthConfig(font_split=fonts, overflow=overflow)
    all_text, phi, phi_keep = Counts(), Counts(), Counts()
    safe_detected = safe_kept = 0
    errors = chars = big_errors = big_chars = 0
    band_errors, band_chars = [0] * len(CER_BANDS), [0] * len(CER_BANDS)
    band_phi, band_phi_found = [0] * len(CER_BANDS), [0] * len(CER_BANDS)
    det_times, read_times, lines_read = [], [], 0
    for i in range(n):
        sample = generate(seed, i, config)
        h, w = sample.image.shape[:2]
        t = time.perf_counter()
        regions = finder.detect(sample.image)
        det_times.append(time.perf_counter() - t)
        text_boxes = [line.box for line in sample.lines]
        phi_boxes = [line.box for line in sample.lines if line.phi]
        all_text.add(score(text_boxes, _boxes(regions), (h, w)))
        found = score(phi_boxes, _boxes(regions), (h, w), text_gt=text_boxes)
        phi.add(found)
        for box, covered in zip(phi_boxes, found.coverages, strict=True):
            k = _band(_text_height(box))
            band_phi[k], band_phi_found[k] = band_phi[k] + 1, band_phi_found[k] + (covered >= COVER)
        if finder.recognizer is not None:
            t = time.perf_counter()
            readings = finder.readings(sample.image, regions)
            read_times.append(time.perf_counter() - t)
            lines_read += len(regions)
            redacted = [r.box for r, (s, c) in zip(regions, readings) if not KEEP_SAFE_POLICY.keeps(s, c, short_side(r))]
            phi_keep.add(score(phi_boxes, redacted, (h, w)))
            other_boxes = [line.box for line in sample.lines if not line.phi]
            detected = score(other_boxes, _boxes(regions), (h, w)).found
            safe_detected += detected
            safe_kept += detected - score(other_boxes, redacted, (h, w)).found
            for e, c, height in _line_cer(finder, sample):
                errors, chars = errors + e, chars + c
                if height >= LEGIBLE_PX:
                    big_errors, big_chars = big_errors + e, big_chars + c
                k = _band(height)
                band_errors[k], band_chars[k] = band_errors[k] + e, band_chars[k] + c
    return {
        "images": n,
        "all_text": all_text.row(),
        "phi": phi.row(),
        # where the misses are, in the CER's bands
        "phi_recall_by_text_height": {
            _band_name(band): {"recall": f / g if g else None, "boxes": g}
            for band, f, g in zip(CER_BANDS, band_phi_found, band_phi)
        },
        "phi_keep_safe_policy": phi_keep.row() if finder.recognizer is not None else None,
        # of the detected lines that are not PHI, the share keep_safe leaves in place: what it is for
        "keep_safe_other_text_kept": safe_kept / safe_detected if safe_detected else None,
        "cer": errors / chars if chars else None,
        f"cer_text_height_ge_{LEGIBLE_PX}px": big_errors / big_chars if big_chars else None,
        "cer_by_text_height": {
            _band_name(band): {"cer": e / c if c else None, "characters": c}
            for band, e, c in zip(CER_BANDS, band_errors, band_chars)
        } if chars else None,
        "det_seconds_median": float(np.median(det_times)),
        "read_seconds_per_line": float(sum(read_times) / max(1, lines_read)) if read_times else None,
    }


#: Modalities whose 512x512 images ``speed`` times: greyscale CT, whose time is the network's, and
#: three colourful ones, which pay for the colour look (ultrasound with coloured labels, endoscopy and
#: screen captures colourful all over).
SPEED_MODALITIES = ("ct", "us", "endo", "sc")


def _speed_image(modality: str) -> np.ndarray:
    """A 512x512 test image of ``modality`` with text; in colour when the modality can be."""
    config = SynthConfig(font_split="test", modality_weights={modality: 1.0}, real_backgrounds=False)
    images = (generate(TEST_SEED, i, config).image for i in range(40))
    image = next((im for im in images if im.ndim == 3), None) if modality != "ct" else None
    if image is None:
        image = generate(TEST_SEED, 0, config).image
    return cv2.resize(image, (512, 512), interpolation=cv2.INTER_AREA) if image.dtype == np.uint8 else \
        np.ascontiguousarray(image[:512, :512])


def speed(finder: TextFinder, repeats: int = 10) -> dict:
    """Median detection time on 512x512 images (SPEED_MODALITIES) and recognition time per line at
    batch 1.

    CPU time of this process (one thread, as ``main`` loads the finder) is reported next to wall time:
    on a shared machine the wall clock mostly measures the neighbours.
    """

    def timed(fn):
        wall, cpu = [], []
        for _ in range(repeats):
            t, c = time.perf_counter(), time.process_time()
            fn()
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        return 1000 * float(np.median(cpu)), 1000 * float(np.median(wall))

    out = {}
    for modality in SPEED_MODALITIES:
        image = _speed_image(modality)
        regions = finder.detect(image)
        out.update(zip((f"detect_cpu_ms_512_{modality}", f"detect_wall_ms_512_{modality}"),
                       timed(lambda: finder.detect(image))))
        if modality == "ct" and finder.recognizer is not None and regions:
            one = max(regions, key=lambda r: r.x1 - r.x0)
            out.update(zip(("read_cpu_ms_per_line", "read_wall_ms_per_line"), timed(lambda: finder.read(image, [one]))))
            out["read_line_width_px"] = one.x1 - one.x0
    return out


def _read_crops(finder: TextFinder, crops: list[np.ndarray]) -> list[str]:
    """The recogniser's greedy reading of each crop, in one batch."""
    if not crops:
        return []
    from models.reading import batch_lines, greedy_decode

    return [t for t, _ in greedy_decode(finder.recognizer(batch_lines([prepare_line(c) for c in crops])))]


def _line_cer(finder: TextFinder, sample) -> list[tuple[int, int, int]]:
    """(edit distance, characters, text height) per ground-truth line box (margins as the detector adds)."""
    gray = to_gray(sample.image)
    crops, truths, heights = [], [], []
    for line in sample.lines:
        heights.append(_text_height(line.box))
        crop = crop_line(gray, line.box)
        if line.rotated:
            crop = upright(crop, line)
        crops.append(crop)
        truths.append(line.text)
    preds = _read_crops(finder, crops)
    return [(*cer(p, truth), h) for p, truth, h in zip(preds, truths, heights)]


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
    pairs = [cer(p.rstrip(": ") if key else p, t) for p, t, key in zip(_read_crops(finder, crops), truths, keys)]
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
        a = score(text_boxes, _boxes(regions), (h, w))
        if reader is not None and reader.engine is not None:
            missed_labels = false_predictions(_boxes(regions), text_boxes, (h, w))
            false_regions += len(missed_labels)
            read_as_text += sum(bool(reader(_crop(image, box, READ_CONTEXT))) for box in missed_labels)
        p = score(phi_boxes, _boxes(regions), (h, w), text_gt=text_boxes)
        all_text.add(a)
        phi.add(p)
        gray = to_gray(image)
        phi_visible.add(score([b for b in phi_boxes if has_contrast(gray, b)], _boxes(regions), (h, w), text_gt=text_boxes))
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


def _fmt(v) -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else (f"{v:.3f}" if isinstance(v, float) else str(v))


def print_tables(result: dict) -> None:
    print(f"\nversion: {result['version']}")
    if result.get("speed"):
        print(f"speed ({result['threads']} thread): {json.dumps({k: round(v, 2) for k, v in result['speed'].items()})}")
    for name in ("validation", "synthetic", "jsl"):
        part = result.get(name)
        if not part:
            continue
        print(f"\n## {name} ({part['images']} images, detection median {_fmt(part['det_seconds_median'])} s/image)")
        print("| subset | GT boxes | pred | recall | precision | F1 | mean coverage |")
        print("|---|---|---|---|---|---|---|")
        for key in ("phi", "phi_visible", "all_text", "phi_keep_safe_policy"):
            row = part.get(key)
            if row:
                print(f"| {key} | {row['gt']} | {row['pred']} | {_fmt(row['recall'])} | {_fmt(row['precision'])} | {_fmt(row['f1'])} | {_fmt(row['coverage'])} |")
        if name in ("validation", "synthetic"):
            print(f"recogniser CER: {_fmt(part['cer'])} (text >= {LEGIBLE_PX} px: {_fmt(part[f'cer_text_height_ge_{LEGIBLE_PX}px'])}); "
                  f"read {_fmt(part['read_seconds_per_line'])} s/line")
            if part.get("phi_recall_by_text_height"):
                print("PHI recall by text height: " + ", ".join(
                    f"{band} {_fmt(b['recall'])} ({b['boxes']} boxes)" for band, b in part["phi_recall_by_text_height"].items()))
            if part.get("cer_by_text_height"):
                print("CER by text height: " + ", ".join(
                    f"{band} {_fmt(b['cer'])} ({b['characters']} characters)" for band, b in part["cer_by_text_height"].items()))
            print(f"keep_safe policy: leaves {_fmt(part.get('keep_safe_other_text_kept'))} of the detected non-PHI lines "
                  f"in place; PHI recall under it is the phi_keep_safe_policy row")
        if name == "jsl" and part.get("cer") is not None:
            print(f"recogniser CER on the labelled keys and values: {_fmt(part['cer'])} ({part['cer_characters']} "
                  f"characters; {part['cer_boxes_left_out']} boxes with nothing visible or a wrapped value left out)")
        if name == "jsl" and part.get("unlabelled_text"):
            u = part["unlabelled_text"]
            print(f"false regions: {u['false_regions']}, of which rapidocr reads text in {u['read_as_text']} "
                  f"(unlabelled text); PHI precision counting those as text: {_fmt(u['phi_precision_counting_them'])}")
        if name == "jsl":
            print("| file | PHI GT | PHI found | pred | false | min coverage |\n|---|---|---|---|---|---|")
            for f in part["files"]:
                print(f"| {f['file']} | {f['phi_gt']} | {f['phi_found']} | {f['pred']} | {f['false']} | {_fmt(f['min_cov'])} |")
    part = result.get("others")
    if part:
        print("\n## other samples with visible text")
        print("| file | regions | categories | OCR lines before | residual after masking (PHI-like) |\n|---|---|---|---|---|")
        for f in part["text_files"]:
            print(f"| {f['file']} | {f.get('regions', f.get('error'))} | {f.get('categories', '')} | {f.get('ocr_before', '-')} | "
                  f"{len(f.get('residual', []))} ({'; '.join(f.get('residual_phi', [])) or 'none'}) |")
        print("\n## samples without text")
        print("| file | regions |\n|---|---|")
        for f in part["clean_files"]:
            print(f"| {f['file']} | {f.get('regions', f.get('error'))} |")
        print(f"zero-detection share on no-text images: {_fmt(part['clean_zero_detection_share'])}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=Path, default=None, help="folder of public samples (e.g. ../shared/samples)")
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--n-synth", type=int, default=200)
    parser.add_argument("--synth-seed", type=int, default=TEST_SEED)
    parser.add_argument("--n-validation", type=int, default=0,
                        help="also the validation set (seed %d, training fonts) the looks were chosen on" % VALIDATION_SEED)
    parser.add_argument("--synth-overflow", type=float, default=0.0,
                        help="share of the synthetic sets' greyscale images on backgrounds that overflowed 8 bits (SynthConfig.overflow)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rotated-look", action="store_true", help="also the rotated look (pixels.rotated_text)")
    parser.add_argument("--no-second-detector", action="store_true",
                        help="without the second detector (pixels.second_detector: false)")
    parser.add_argument("--no-verifier", action="store_true", help="without the region verifier (pixels.verifier: false)")
    parser.add_argument("--no-residual", action="store_true", help="skip the rapidocr check of masked images")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    finder = TextFinder.load(args.weights, threads=args.threads, second_detector=not args.no_second_detector,
                             verifier=not args.no_verifier)
    if args.rotated_look:
        finder = finder.with_rotated_look()
    result = {"version": finder.version, "threads": args.threads, "speed": speed(finder), "synthetic": synthetic(finder, args.n_synth, args.synth_seed, overflow=args.synth_overflow) if args.n_synth else None}
    if args.n_validation:
        result["validation"] = synthetic(finder, args.n_validation, VALIDATION_SEED, fonts="train", overflow=args.synth_overflow)
    if args.samples and (args.samples / JSL).is_dir():
        result["jsl"] = jsl(finder, args.samples, None if args.no_residual else ResidualReader())
    if args.samples and (args.samples / "INVENTORY.tsv").exists():
        result["others"] = others(finder, args.samples, not args.no_residual)
    print_tables(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
