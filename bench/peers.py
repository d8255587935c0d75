"""What the text benchmarks share: the peers' engines, the JohnSnowLabs ground truth, the options.

`bench/text_detection.py` and `bench/text_reading.py` put this project's networks beside rapidocr
(PP-OCR, its ONNX models inside the wheel, so offline) and Tesseract (Debian's `tesseract-ocr`), each
limited to the same thread count.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from models.training.evaluate import JSL, read_dicom


def rapidocr_engine(threads: int):
    from rapidocr import RapidOCR

    return RapidOCR(params={"Global.use_cls": False, "Global.log_level": "critical",
                            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                            "EngineConfig.onnxruntime.inter_op_num_threads": 1})


class TesseractCommand:
    """Tesseract on one image at a time, written to a private temporary folder."""

    def __init__(self, threads: int = 1):
        if shutil.which("tesseract") is None:
            raise RuntimeError("tesseract not on PATH")
        self.threads = threads
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-tess-"))

    def run(self, image: np.ndarray, *options: str) -> str:
        import cv2

        path = self.tmp / "image.png"
        cv2.imwrite(str(path), image if image.ndim == 2 else image[..., ::-1])
        return subprocess.run(["tesseract", str(path), "-", *options], capture_output=True, text=True, timeout=120,
                              env={"OMP_THREAD_LIMIT": str(self.threads), "PATH": "/usr/bin:/bin"}).stdout


def jsl_files(samples: Path | None) -> Iterator[tuple[dict, np.ndarray]]:
    """(ground truth, image) of each JohnSnowLabs file with pixel data, if ``samples`` holds them."""
    if samples is None or not (samples / JSL).is_dir():
        return
    for gt_path in sorted((samples / JSL / "ground_truth").glob("*.json")):
        gt = json.loads(gt_path.read_text())
        _, image = read_dicom(samples / JSL / gt["filename"])
        if image is not None:
            yield gt, image


def arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--samples", type=Path, default=None)
    parser.add_argument("--n-synth", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1, help="torch / onnxruntime threads")
    parser.add_argument("--weights", type=Path, default=None, help="weights folder (default models/weights)")
    return parser


def available(peers, threads: int) -> list:
    """An instance of each peer class that can run here; a missing one is said and left out."""
    out = []
    for cls in peers:
        try:
            out.append(cls(threads))
        except Exception as exc:  # optional competitors
            print(f"skipping {cls.__name__}: {exc}")
    return out


def time_ratio(times, ours) -> float:
    """Median of the per-item ratios of ``times`` to ``ours`` (the same items, in the same run): on a
    shared, noisy machine the ratio of each item's two timings drifts less than either."""
    return float(np.median(np.asarray(times) / np.maximum(np.asarray(ours), 1e-9)))
