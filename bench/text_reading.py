"""Benchmark reading burned-in text lines: this project's recogniser vs rapidocr (PP-OCR) vs Tesseract.

    python bench/text_reading.py --samples ../shared/samples [--n-synth 40] [--threads 1]

Each reader gets the same line crops in the same run, cut the way `models.training.evaluate` cuts them for
the recogniser's CER: the ground-truth lines of synthetic test images (held-out fonts, another
seed; 90-degree lines turned upright), and, with --samples, the labelled keys and values of the
JohnSnowLabs files (real burned-in text; boxes with nothing visible and wrapped values left out,
as `models.training.evaluate` does). The character error rate is reported overall and per text-height
band, since most errors are on the smallest text; time is milliseconds per line, one line at a
time (rapidocr in recognition-only mode, Tesseract as one line, ``--psm 7``), with the median
per-line time ratio against this recogniser. Every reader gets the same thread count.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.peers import TesseractCommand, arguments, available, jsl_files, rapidocr_engine, time_ratio  # noqa: E402
from models.reading import cer  # noqa: E402
from models.render import to_gray  # noqa: E402
from models.training.evaluate import CER_BANDS, TEST_SEED, has_contrast, wrapped_value  # noqa: E402
from models.training.synth import SynthConfig, generate  # noqa: E402
from models.training.train_recognizer import crop_line, upright  # noqa: E402


def load_lines(samples: Path | None, n_synth: int) -> list[dict]:
    """[{set, crop (uint8 greyscale, upright), text, height, key}] from synthetic and JohnSnowLabs images."""
    lines = []
    config = SynthConfig(font_split="test")
    for i in range(n_synth):
        sample = generate(TEST_SEED, i, config)
        gray = to_gray(sample.image)
        for line in sample.lines:
            x0, y0, x1, y1 = line.box
            crop = crop_line(gray, line.box)
            if line.rotated:
                crop = upright(crop, line)
            lines.append({"set": "synthetic", "crop": crop, "text": line.text, "height": min(x1 - x0, y1 - y0), "key": False})
    for gt, image in jsl_files(samples):
        gray = to_gray(image)
        for a in gt["annotation"]:
            for part in ("key", "value"):
                text, box = a[part].get("text", "").strip(), a[part].get("bbox")
                if not text or not box or not has_contrast(gray, box) or (part == "value" and wrapped_value(a)):
                    continue
                box = tuple(int(v) for v in box)
                lines.append({"set": "jsl", "crop": crop_line(gray, box), "text": text,
                              "height": min(box[2] - box[0], box[3] - box[1]), "key": part == "key"})
    return lines


class Ours:
    def __init__(self, weights: Path | None = None, threads: int = 1):
        from models.inference import TextFinder

        self.finder = TextFinder.load(weights, threads=threads)
        self.name = f"this recogniser ({self.finder.version.split('+')[1]})"

    def __call__(self, crop: np.ndarray) -> str:
        from models.reading import batch_lines, greedy_decode, prepare_line

        return greedy_decode(self.finder.recognizer(batch_lines([prepare_line(crop)])))[0][0]


class RapidOCR:
    name = "rapidocr (PP-OCR rec)"

    def __init__(self, threads: int = 1):
        self.engine = rapidocr_engine(threads)

    def __call__(self, crop: np.ndarray) -> str:
        result = self.engine(np.ascontiguousarray(cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)), use_det=False, use_cls=False, use_rec=True)
        return " ".join(result.txts or ())


class Tesseract:
    name = "tesseract 5 (--psm 7, one line)"

    def __init__(self, threads: int = 1):
        self.command = TesseractCommand(threads)

    def __call__(self, crop: np.ndarray) -> str:
        return " ".join(self.command.run(crop, "--psm", "7").split())


def run(readers, lines: list[dict]) -> dict:
    results = {}
    for reader in readers:
        errors, times = [], []
        for line in lines:
            t = time.perf_counter()
            text = reader(line["crop"])
            times.append(time.perf_counter() - t)
            if line["key"]:  # a key's box holds its colon, its label does not
                text = text.rstrip(": ")
            errors.append(cer(text, line["text"]))
        results[reader.name] = {"errors": errors, "times": times}
    return results


def _rate(pairs) -> str:
    chars = sum(c for _, c in pairs)
    return f"{sum(e for e, _ in pairs) / chars:.3f}" if chars else "-"


def print_table(results: dict, lines: list[dict]) -> None:
    names = list(results)
    base = np.array(results[names[0]]["times"])
    bands = [f"{lo}-{hi - 1} px" if hi < 10_000 else f">={lo} px" for lo, hi in CER_BANDS]
    print(f"| reader | set | lines | CER | {' | '.join(bands)} | ms/line (median) | time ratio vs ours (median) |")
    print("|---|---|---|---|" + "---|" * len(bands) + "---|---|")
    for name in names:
        errors, times = results[name]["errors"], np.array(results[name]["times"])
        ratio = time_ratio(times, base)
        for key in ("all", "synthetic", "jsl"):
            idx = [k for k, line in enumerate(lines) if key == "all" or line["set"] == key]
            if not idx:
                continue
            by_band = [_rate([errors[k] for k in idx if lo <= lines[k]["height"] < hi]) for lo, hi in CER_BANDS]
            print(f"| {name} | {key} | {len(idx)} | {_rate([errors[k] for k in idx])} | {' | '.join(by_band)} | "
                  f"{1000 * np.median(times[idx]):.1f} | {ratio:.1f}x |")


def main(argv=None) -> None:
    args = arguments(__doc__).parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    lines = load_lines(args.samples, args.n_synth)
    readers = [Ours(args.weights, args.threads)]
    readers += available((RapidOCR, Tesseract), args.threads)
    print(f"{len(lines)} lines ({sum(line['set'] == 'jsl' for line in lines)} JohnSnowLabs keys and values, "
          f"{sum(line['set'] == 'synthetic' for line in lines)} synthetic)")
    print_table(run(readers, lines), lines)


if __name__ == "__main__":
    main()
