"""Restoration quality of the pixel stage's backends where the clean image is known.

    python -m bench.inpaint [--n 120] [--backend telea fill sd2] [--device cpu|cuda|auto]
                            [--sd2-model DIR] [--steps 20] [--json out.json]
    python -m bench.inpaint --device cuda --backend sd2 --sd2-model DIR   # on a lent GPU

Generated images: a modality-like background (models.training.synth.backgrounds, display space), text
burned in (OpenCV's Hershey font, mostly white, sometimes black), mask = the glyph mask dilated as the stage
dilates its boxes. Each backend (telea, fill, sd2) restores the masked pixels through the very
classes the gateway uses. Per image, against the clean background (8-bit scale):

- MSE, PSNR and SSIM inside the mask and over the whole image;
- ``edge``: the smear at the mask's border. In a ring EDGE_WIDTH px either side of the mask's
  boundary, the mean absolute difference between the restored and the clean image's gradient
  magnitudes, as a fraction of the clean image's mean gradient there (at least 1 grey level/px).
  0 for an untouched image; a solid fill's step at the border or a Telea streak raise it;
- ``f1``: the seed paper's downstream check, the macro F1 of a small modality classifier trained on
  clean images only (bench.modality_classifier) over all the held-out images; ``p_true``, the
  mean probability it gives the true modality, moves before a prediction flips. ``f1_local`` and
  ``p_true_local``: the same for a second classifier trained on LOCAL_SIDE px crops of clean
  images at full resolution and shown the window around each mask (a line of text hardly shows
  in a whole image downsampled for the first).

The table gives medians over the images (F1 and p_true are one figure over all of them).
Rows ``original`` (the clean image) and ``(no restoration)`` (text left in) give the scale.

Without --sd2-model the sd2 row uses a tiny randomly initialised pipeline (tests/pixels/tiny_sd2.py):
it exercises the code path, its quality numbers mean nothing. Reference (seed paper): Telea
SSIM 0.96, diffusion MSE ≈ 912, classifier F1 0.999 after diffusion inpainting.
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

from gateway.pixels.inpaint.base import RestoreContext, restore_many
from gateway.pixels.inpaint.fill import FillInpainter
from gateway.pixels.inpaint.telea import TeleaInpainter

KINDS = ("ct", "xray", "mr", "us", "mammo", "endo")
MODALITY = {"ct": "CT", "xray": "CR", "mr": "MR", "us": "US", "mammo": "MG", "endo": "ES"}
WORDS = ("DOE^JANE", "ID 4471203", "03/14/1961", "ST MARY HOSP", "F 62Y", "ACC 99812", "L", "R")
BACKENDS = ("telea", "fill", "sd2")
#: Half-width in pixels of the ring around the mask's boundary where ``edge_artefact`` looks.
EDGE_WIDTH = 2
#: Clean training images per modality for the downstream classifiers.
TRAIN_PER_CLASS = 80
#: The local classifier's window (full resolution) and its training crops per clean image.
LOCAL_SIDE = 64
LOCAL_CROPS = 4


@dataclass
class Sample:
    clean: np.ndarray  # uint8, HxW or HxWx3
    dirty: np.ndarray
    mask: np.ndarray  # bool
    modality: str


def clean_image(rng: np.random.Generator, kind: str, size: int) -> np.ndarray:
    """One generated background, no text, as 8-bit display values."""
    from models.training.synth import backgrounds

    return np.clip(np.rint(backgrounds.background(rng, kind, size, size) * 255), 0, 255).astype(np.uint8)


def make_sample(seed: int, size: int = 256, dilate: int = 3) -> Sample:
    rng = np.random.default_rng(seed)
    kind = KINDS[seed % len(KINDS)]
    clean = clean_image(rng, kind, size)
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


def _gradient(img: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude in grey levels per pixel."""
    grey = _gray(img).astype(np.float32)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
    return np.hypot(gx, gy)


def edge_ring(mask: np.ndarray, width: int = EDGE_WIDTH) -> np.ndarray:
    """Pixels within ``width`` of the mask's boundary, inside or outside it."""
    kernel = np.ones((3, 3), np.uint8)
    m = mask.astype(np.uint8)
    return (cv2.dilate(m, kernel, iterations=width) > 0) & ~(cv2.erode(m, kernel, iterations=width, borderValue=1) > 0)


def edge_artefact(clean: np.ndarray, restored: np.ndarray, mask: np.ndarray, width: int = EDGE_WIDTH) -> float:
    """The smear at the mask's border: how far the restored gradient strays from the clean one in
    the ring around the boundary, relative to the clean gradient there.

    Gradients rather than values, because a seam is a step (a fill's edge, a streak Telea drags
    in) that a smooth in-mask error does not make; relative, because a step matters less in
    busy texture than on a flat field (floor 1 grey level/px, so flat air does not divide by 0).
    """
    ring = edge_ring(mask, width)
    if not ring.any():
        return 0.0
    g_clean, g_restored = _gradient(clean)[ring], _gradient(restored)[ring]
    return float(np.abs(g_restored - g_clean).mean() / max(float(g_clean.mean()), 1.0))


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
    out["edge"] = edge_artefact(clean, restored, mask)
    return out


def backends(names: tuple[str, ...], sd2_model: str | None, device: str, steps: int, crop: int, tmp: str) -> dict:
    found = {name: cls() for name, cls in (("telea", TeleaInpainter), ("fill", FillInpainter)) if name in names}
    if "sd2" not in names:
        return found
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
        found[label] = Sd2Inpainter(sd2_model, resolve_device(device), steps=steps, crop_size=crop)
    except ImportError as exc:
        print(f"sd2 skipped: {exc}", file=sys.stderr)
    return found


def mask_window(img: np.ndarray, mask: np.ndarray, side: int = LOCAL_SIDE) -> np.ndarray:
    """The side×side window centred on the mask's bounding box (shifted to stay inside the image)."""
    ys, xs = np.nonzero(mask)
    cy, cx = (int(ys.min() + ys.max()) // 2, int(xs.min() + xs.max()) // 2) if ys.size else (0, 0)
    y0 = min(max(cy - side // 2, 0), img.shape[0] - side)
    x0 = min(max(cx - side // 2, 0), img.shape[1] - side)
    return img[y0:y0 + side, x0:x0 + side]


def _classifiers(size: int, train_per_class: int) -> dict[str, object]:
    """The whole-image classifier (the paper's) and the local one, trained on clean images only."""
    from bench.modality_classifier import trained_classifier

    def whole(rng, kind):
        return [clean_image(rng, kind, size)]

    def crops(rng, kind):
        img = clean_image(rng, kind, size)
        corners = rng.integers(0, size - LOCAL_SIDE + 1, (LOCAL_CROPS, 2))
        return [img[y:y + LOCAL_SIDE, x:x + LOCAL_SIDE] for y, x in corners]

    started = time.perf_counter()
    found = {"": trained_classifier(MODALITY, train_per_class, whole),
             "_local": trained_classifier(MODALITY, train_per_class, crops)}
    print(f"modality classifiers: trained in {time.perf_counter() - started:.0f} s, training accuracy "
          + ", ".join(f"{k or 'whole'} {c.train_accuracy:.3f}" for k, c in found.items()), file=sys.stderr)
    return found


def _row(samples: list[Sample], images: list[np.ndarray], classifiers: dict) -> dict[str, float]:
    """Medians of the per-image figures; each classifier's macro F1 and mean confidence over all the images."""
    from bench.modality_classifier import macro_f1

    truth = [s.modality for s in samples]
    rows = [metrics(s.clean, img, s.mask) for s, img in zip(samples, images)]
    agg = {k: float(np.median([r[k] for r in rows])) for k in rows[0]}
    views = {"": images, "_local": [mask_window(img, s.mask) for s, img in zip(samples, images)]}
    for suffix, classifier in classifiers.items():
        agg[f"f1{suffix}"] = macro_f1(truth, classifier.predict(views[suffix]))
        # the mean: the median saturates at ~1
        agg[f"p_true{suffix}"] = float(np.mean(classifier.confidence(views[suffix], truth)))
    return agg


def evaluate(n: int, names: tuple[str, ...] = BACKENDS, sd2_model: str | None = None, device: str = "auto",
             steps: int = 20, crop: int = 512, train_per_class: int = TRAIN_PER_CLASS) -> dict[str, dict[str, float]]:
    samples = [make_sample(i) for i in range(n)]
    classifiers = _classifiers(samples[0].clean.shape[0], train_per_class)
    table: dict[str, dict[str, float]] = {}
    for name, images in (("original", [s.clean for s in samples]), ("(no restoration)", [s.dirty for s in samples])):
        table[name] = _row(samples, images, classifiers)
    with tempfile.TemporaryDirectory() as tmp:
        for name, backend in backends(names, sd2_model, device, steps, crop, tmp).items():
            started = time.perf_counter()
            items = [(s.dirty, s.mask, RestoreContext(s.modality, (0, 255))) for s in samples]
            restored = restore_many(backend, items)
            seconds = (time.perf_counter() - started) / len(samples)
            table[name] = _row(samples, restored, classifiers)
            table[name]["seconds_per_image"] = seconds
    return table


COLUMNS = ("f1", "p_true", "f1_local", "p_true_local", "mse_mask", "psnr_mask", "ssim_mask",
           "mse_image", "psnr_image", "ssim_image", "edge")


def _cell(column: str, value: float) -> str:
    if column.startswith("p_true"):
        return f"{value:.4f}"
    return f"{value:.3f}" if column.startswith(("f1", "ssim")) or column == "edge" else f"{value:.1f}"


def format_table(table: dict[str, dict[str, float]]) -> str:
    lines = ["| backend | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name, row in table.items():
        cells = [_cell(c, row[c]) for c in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("medians over the images; f1: macro F1 of the modality classifier over all of them, "
                 "p_true: its mean probability for the true modality; _local: the same for "
                 f"a classifier of the {LOCAL_SIDE} px window around the mask; edge: gradient "
                 f"error in a {EDGE_WIDTH} px ring either side of the mask's border / the clean gradient there "
                 "(0 without restoration: the text stays inside the dilated mask)")
    lines.append("reference (seed paper): telea SSIM 0.96; diffusion MSE ≈ 912; classifier F1 0.999 after diffusion")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=120, help="number of held-out generated images (20 per modality)")
    parser.add_argument("--backend", nargs="+", choices=BACKENDS, default=list(BACKENDS), help="backends to measure")
    parser.add_argument("--device", choices=["cpu", "cuda", "auto"], default="auto", help="where sd2 runs")
    parser.add_argument("--sd2-model", default=None,
                        help="local SD2 inpainting directory (default: tiny random pipeline)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--crop", type=int, default=512)
    parser.add_argument("--train-per-class", type=int, default=TRAIN_PER_CLASS,
                        help="clean training images per modality")
    parser.add_argument("--json", default=None, help="also write the table as JSON here")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)  # a small, repeatable CPU job that leaves the other core alone
    table = evaluate(args.n, tuple(args.backend), args.sd2_model, args.device, args.steps, args.crop,
                     args.train_per_class)
    print(format_table(table))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(table, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
