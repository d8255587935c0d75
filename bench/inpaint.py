"""Restoration quality of the pixel stage's backends where the clean image is known.

    python -m bench.inpaint [--n 24] [--sd2-model DIR] [--steps 20] [--json out.json]

Generated images: a modality-like background (models.training.synth.backgrounds, display space), text
burned in with the fonts the detector trains on, mask = the glyph mask dilated as the stage
dilates its boxes. Each backend (telea, fill, sd2) restores the masked pixels through the very
classes the gateway uses; MSE, PSNR and SSIM are measured against the clean background
inside the mask and over the whole image (8-bit scale).

Without --sd2-model the sd2 row uses a tiny randomly initialised pipeline (tests/pixels/tiny_sd2.py):
it exercises the code path, its quality numbers mean nothing. Reference (seed paper): Telea
SSIM 0.96, diffusion MSE ≈ 912.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass

import cv2
import numpy as np

from gateway.pixels.inpaint.base import RestoreContext
from gateway.pixels.inpaint.fill import FillInpainter
from gateway.pixels.inpaint.telea import TeleaInpainter

KINDS = ("ct", "xray", "mr", "us", "mammo", "endo")
MODALITY = {"ct": "CT", "xray": "CR", "mr": "MR", "us": "US", "mammo": "MG", "endo": "ES"}
WORDS = ("DOE^JANE", "ID 4471203", "03/14/1961", "ST MARY HOSP", "F 62Y", "ACC 99812", "L", "R")


@dataclass
class Sample:
    clean: np.ndarray  # uint8, HxW or HxWx3
    dirty: np.ndarray
    mask: np.ndarray  # bool
    modality: str


def make_sample(seed: int, size: int = 256, dilate: int = 3) -> Sample:
    from models.training.synth import backgrounds

    rng = np.random.default_rng(seed)
    kind = KINDS[seed % len(KINDS)]
    bg = backgrounds.background(rng, kind, size, size)
    clean = np.clip(np.rint(bg * 255), 0, 255).astype(np.uint8)
    ink = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(2, 5))):
        word = WORDS[int(rng.integers(len(WORDS)))]
        scale = float(rng.uniform(0.35, 0.8))
        x, y = int(rng.integers(2, size // 2)), int(rng.integers(16, size - 4))
        cv2.putText(ink, word, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, 1, cv2.LINE_AA)
    alpha = ink.astype(np.float32) / 255.0
    colour = 255.0 if rng.random() < 0.8 else 0.0
    if clean.ndim == 3:
        alpha = alpha[..., None]
    dirty = np.clip(np.rint(clean * (1 - alpha) + colour * alpha), 0, 255).astype(np.uint8)
    mask = cv2.dilate((ink > 0).astype(np.uint8), np.ones((2 * dilate + 1, 2 * dilate + 1), np.uint8)) > 0
    return Sample(clean, dirty, mask, MODALITY[kind])


def _gray(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SSIM (Wang et al. 2004; Gaussian window σ=1.5, 8-bit constants) per pixel."""
    a, b = _gray(a).astype(np.float64), _gray(b).astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda x: cv2.GaussianBlur(x, (11, 11), 1.5)
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a ** 2, blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))


def metrics(clean: np.ndarray, restored: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    diff2 = (clean.astype(np.float64) - restored.astype(np.float64)) ** 2
    if diff2.ndim == 3:
        diff2 = diff2.mean(axis=2)
    smap = ssim_map(clean, restored)
    out = {}
    for where, sel in (("mask", mask), ("image", np.ones_like(mask))):
        mse = float(diff2[sel].mean())
        out[f"mse_{where}"] = mse
        out[f"psnr_{where}"] = float(10 * np.log10(255.0 ** 2 / mse)) if mse > 0 else float("inf")
        out[f"ssim_{where}"] = float(smap[sel].mean())
    return out


def backends(sd2_model: str | None, steps: int, crop: int, tmp: str) -> dict:
    found = {"telea": TeleaInpainter(), "fill": FillInpainter()}
    try:
        from diffusers.utils import logging as diffusers_logging
        from transformers.utils import logging as transformers_logging

        diffusers_logging.set_verbosity_error()
        transformers_logging.set_verbosity_error()
        from gateway.pixels.finders import resolve_device
        from gateway.pixels.inpaint.sd2 import Sd2Inpainter

        if sd2_model is None:
            from tests.pixels.tiny_sd2 import build_tiny_sd2

            sd2_model = str(build_tiny_sd2(tmp))
            crop = min(crop, 64)
            label = "sd2 (tiny random, plumbing only)"
        else:
            label = "sd2"
        found[label] = Sd2Inpainter(sd2_model, resolve_device("auto"), steps=steps, crop_size=crop)
    except ImportError as exc:
        print(f"sd2 skipped: {exc}", file=sys.stderr)
    return found


def evaluate(n: int, sd2_model: str | None, steps: int, crop: int) -> dict[str, dict[str, float]]:
    samples = [make_sample(i) for i in range(n)]
    table: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, backend in backends(sd2_model, steps, crop, tmp).items():
            rows, started = [], time.perf_counter()
            for s in samples:
                restored = backend.restore(s.dirty, s.mask, RestoreContext(s.modality, (0, 255)))
                rows.append(metrics(s.clean, restored, s.mask))
            agg = {k: float(np.mean([r[k] for r in rows if np.isfinite(r[k])])) for k in rows[0]}
            agg["seconds_per_image"] = (time.perf_counter() - started) / len(samples)
            table[name] = agg
    # The unrestored image, for scale.
    rows = [metrics(s.clean, s.dirty, s.mask) for s in samples]
    table["(no restoration)"] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    return table


def format_table(table: dict[str, dict[str, float]]) -> str:
    cols = ("mse_mask", "psnr_mask", "ssim_mask", "mse_image", "psnr_image", "ssim_image")
    lines = ["| backend | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, row in table.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[c]:.3f}" if "ssim" in c else f"{row[c]:.1f}" for c in cols) + " |")
    lines.append("")
    lines.append("reference (seed paper): telea SSIM 0.96; diffusion MSE ≈ 912")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=24, help="number of generated images")
    parser.add_argument("--sd2-model", default=None, help="local SD2 inpainting directory (default: tiny random pipeline)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--crop", type=int, default=512)
    parser.add_argument("--json", default=None, help="also write the table as JSON here")
    args = parser.parse_args(argv)
    table = evaluate(args.n, args.sd2_model, args.steps, args.crop)
    print(format_table(table))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(table, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
