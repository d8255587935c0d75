"""Benchmark burned-in text detection: this project's detector vs rapidocr (PP-OCR) vs Tesseract.

    python bench/text_detection.py --samples ../shared/samples [--n-synth 40] [--threads 1]

All three run on the same images in the same run: the JohnSnowLabs files with ground-truth boxes
(if --samples is given) and synthetic test images (held-out fonts, another seed).  Recall and
precision use the area-based matching of `models.metrics`; time is seconds per image (rapidocr in
detection-only mode; Tesseract has no detection-only mode, so its time includes recognition).
Ratios are medians of the per-image time ratios against this detector.  Every method gets the same
thread count (--threads, default 1: torch, onnxruntime intra-op, Tesseract's OpenMP).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.peers import TesseractCommand, arguments, available, jsl_files, rapidocr_engine, time_ratio  # noqa: E402
from models.metrics import Counts, score  # noqa: E402
from models.training.evaluate import TEST_SEED  # noqa: E402
from models.training.synth import SynthConfig, generate  # noqa: E402


def load_images(samples: Path | None, n_synth: int) -> list[dict]:
    """[{name, image (uint8), phi: [boxes], text: [boxes]}] from JSL ground truth and synthetic test data."""
    items = []
    for gt, image in jsl_files(samples):
        phi = [tuple(a["value"]["bbox"]) for a in gt["annotation"] if a["value"].get("text", "").strip() and a["value"].get("bbox")]
        keys = [tuple(a["key"]["bbox"]) for a in gt["annotation"] if a["key"].get("text", "").strip() and a["key"].get("bbox")]
        items.append({"set": "jsl", "name": gt["filename"], "image": image, "phi": phi, "text": phi + keys})
    config = SynthConfig(font_split="test")
    for i in range(n_synth):
        s = generate(TEST_SEED, i, config)
        items.append({"set": "synthetic", "name": f"synth-{i}", "image": s.image,
                      "phi": [l.box for l in s.lines if l.phi], "text": [l.box for l in s.lines]})
    return items


class Ours:
    name = "this detector"

    def __init__(self, weights: Path | None = None, threads: int = 1, single_scale: bool = False,
                 second_detector: bool = True, verifier: bool = True):
        from models.inference import TextFinder

        self.finder = TextFinder.load(weights, threads=threads, second_detector=second_detector, verifier=verifier)
        runtime = getattr(self.finder.detector, "runtime", "?")
        if single_scale:
            self.finder = self.finder.single_scale()
            self.name = f"this detector, working scale only ({runtime})"
        else:
            self.name = f"this detector ({self.finder.version}, {runtime})"

    def __call__(self, image):
        return [r.box for r in self.finder.detect(image)]


class RapidOCR:
    name = "rapidocr (PP-OCR det)"

    def __init__(self, threads: int = 1):
        self.engine = rapidocr_engine(threads)

    def __call__(self, image):
        rgb = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        try:
            result = self.engine(np.ascontiguousarray(rgb[..., ::-1]), use_det=True, use_cls=False, use_rec=False)
        except TypeError:
            result = self.engine(np.ascontiguousarray(rgb[..., ::-1]))
        boxes = result.boxes if result.boxes is not None else []
        out = []
        for poly in boxes:
            poly = np.asarray(poly)
            out.append((int(poly[:, 0].min()), int(poly[:, 1].min()), int(np.ceil(poly[:, 0].max())) + 1, int(np.ceil(poly[:, 1].max())) + 1))
        return out


class Tesseract:
    name = "tesseract 5 (--psm 11, words)"

    def __init__(self, threads: int = 1):
        self.command = TesseractCommand(threads)

    def __call__(self, image):
        boxes = []
        for line in self.command.run(image, "--psm", "11", "tsv").splitlines()[1:]:
            cols = line.split("\t")
            if len(cols) == 12 and cols[0] == "5" and cols[11].strip() and float(cols[10]) > 0:
                x, y, w, h = map(int, cols[6:10])
                boxes.append((x, y, x + w, y + h))
        return boxes


def run(methods, items) -> dict:
    results = {}
    for method in methods:
        per_set = {"all": (Counts(), Counts())}
        times = []
        for item in items:
            t = time.perf_counter()
            pred = method(item["image"])
            times.append(time.perf_counter() - t)
            shape = item["image"].shape[:2]
            for key in ("all", item["set"]):
                phi, text = per_set.setdefault(key, (Counts(), Counts()))
                phi.add(score(item["phi"], pred, shape, text_gt=item["text"]))
                text.add(score(item["text"], pred, shape))
        results[method.name] = {"times": times, "sets": per_set}
    return results


def print_table(results: dict) -> None:
    names = list(results)
    base = np.array(results[names[0]]["times"])
    print("| method | set | PHI recall | PHI precision | text recall | text precision | s/image (median) | time ratio vs ours (median) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        times = np.array(results[name]["times"])
        ratio = time_ratio(times, base)
        for key, (phi, text) in results[name]["sets"].items():
            print(f"| {name} | {key} | {phi.recall:.3f} | {phi.precision:.3f} | {text.recall:.3f} | {text.precision:.3f} | "
                  f"{np.median(times):.3f} | {ratio:.1f}x |")


def main(argv=None) -> None:
    args = arguments(__doc__).parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    items = load_images(args.samples, args.n_synth)
    methods = [Ours(args.weights, args.threads), Ours(args.weights, args.threads, second_detector=False),
               Ours(args.weights, args.threads, verifier=False),
               Ours(args.weights, args.threads, single_scale=True)]
    methods += available((RapidOCR, Tesseract), args.threads)
    print(f"{len(items)} images ({sum(i['set'] == 'jsl' for i in items)} JohnSnowLabs, "
          f"{sum(i['set'] == 'synthetic' for i in items)} synthetic)")
    print_table(run(methods, items))


if __name__ == "__main__":
    main()
