"""Procedural "hard negatives": text-free patterns that a text detector tends to fire on.

Used only for training (``SynthConfig.hard_negatives`` > 0): step wedges, colour-bar and TV test
cards, line-pair resolution groups, gratings and sweeps, rings, checkerboards, grids, periodic
textures (lace, fabric, meshes), glints / specular highlights (rows of tiny bright specks), label
maps (flat regions with sharp edges), thresholded / posterised texture, blocky compression
artefacts, streak artefacts and rulers' tick marks.  None of them draws a glyph or a digit, so
nothing here needs a label; text placed afterwards (elsewhere or on top) is labelled as usual.

All recipes draw on a display-space float RGB image in [0, 1] (HxWx3) with their own random
generator, so the default generator stream is untouched when the switch is off.
"""

from __future__ import annotations

import cv2
import numpy as np

from models.training.synth.artefacts import blocky, glints, label_map, posterised, streaks
from models.training.synth.targets import (
    colour_bars,
    geometric,
    line_pairs,
    periodic,
    random_colour,
    ruler,
    step_wedge,
)

#: Patch recipes (`targets`, `artefacts`) and how often each is drawn.
RECIPES = {"step_wedge": (step_wedge, 0.14), "colour_bars": (colour_bars, 0.1), "line_pairs": (line_pairs, 0.1),
           "geometric": (geometric, 0.1), "periodic": (periodic, 0.1), "glints": (glints, 0.12),
           "label_map": (label_map, 0.1), "posterised": (posterised, 0.08), "blocky": (blocky, 0.06),
           "streaks": (streaks, 0.05), "ruler": (ruler, 0.05)}

#: Share of patches kept free of text; the others may get text drawn over them (text on wedges, bars,
#: posterised lungs... must still be found, so most patches are not reserved).
KEEP_FREE = 0.2

#: Recipes drawn only on colour images: specks of light on monochrome frames look too much like
#: 4-5 px text (the second warm start lost such text on MR slices), and glare is a photo's problem.
COLOUR_ONLY = frozenset({"glints"})


def _pick(rng, colour: bool = True) -> str:
    """A recipe's name, by its weight; on a monochrome image (``colour`` False) none of COLOUR_ONLY."""
    names = [n for n in RECIPES if colour or n not in COLOUR_ONLY]
    p = np.array([RECIPES[n][1] for n in names])
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _rect(rng, h: int, w: int, lo: float = 0.08, hi: float = 0.6, min_px: int = 12) -> tuple[int, int, int, int]:
    """A random rectangle (x0, y0, x1, y1) inside an (h, w) image, often touching an edge."""
    pw = int(np.clip(w * rng.uniform(lo, hi), min(min_px, w), w))
    ph = int(np.clip(h * rng.uniform(lo, hi), min(min_px, h), h))
    if rng.random() < 0.5:  # thin strips along an edge (wedges, rulers, bars at the border)
        if rng.random() < 0.5:
            ph = int(np.clip(rng.uniform(8, 60), 4, h))
        else:
            pw = int(np.clip(rng.uniform(8, 60), 4, w))
    x0 = int(rng.integers(0, w - pw + 1))
    y0 = int(rng.integers(0, h - ph + 1))
    r = rng.random()
    if r < 0.15:
        y0 = 0
    elif r < 0.3:
        y0 = h - ph
    elif r < 0.4:
        x0 = 0
    elif r < 0.5:
        x0 = w - pw
    return x0, y0, x0 + pw, y0 + ph


def test_card(rng, h: int, w: int) -> np.ndarray:
    """A whole-frame test card: grey grid background, a big circle, bars, wedges and resolution groups."""
    img = np.full((h, w, 3), rng.uniform(0.3, 0.6), np.float32)
    step = int(rng.integers(max(8, min(h, w) // 16), max(9, min(h, w) // 6)))
    for x in range(int(rng.integers(0, step)), w, step):
        cv2.line(img, (x, 0), (x, h), (1, 1, 1), 1)
    for y in range(int(rng.integers(0, step)), h, step):
        cv2.line(img, (0, y), (w, y), (1, 1, 1), 1)
    if rng.random() < 0.7:
        r = int(min(h, w) * rng.uniform(0.35, 0.5))
        circle = np.zeros((h, w), np.uint8)
        cv2.circle(circle, (w // 2, h // 2), r, 1, -1)
        inner = np.zeros((h, w, 3), np.float32)
        y0 = max(0, h // 2 - r)
        bands = int(rng.integers(3, 6))
        edges = np.linspace(y0, min(h, h // 2 + r), bands + 1).astype(int)
        for k in range(bands):
            name = _pick(rng)
            fn = RECIPES[name][0]
            bh = edges[k + 1] - edges[k]
            if bh >= 4:
                inner[edges[k]:edges[k + 1]] = fn(rng, bh, w, img[edges[k]:edges[k + 1]].copy())
        img = np.where(circle[..., None] > 0, inner, img)
    for _ in range(int(rng.integers(0, 4))):  # side blocks
        x0, y0, x1, y1 = _rect(rng, h, w, 0.05, 0.25)
        img[y0:y1, x0:x1] = random_colour(rng)
    return img


def full_frame(rng, h: int, w: int, base: np.ndarray, colour: bool = True) -> np.ndarray:
    """A whole frame of one hard negative (a quarter of the images that get any): test cards and
    label maps most often, whole images of glare on colour ones."""
    kind = rng.random()
    if kind < 0.35:
        return test_card(rng, h, w)
    if kind < 0.55:
        return label_map(rng, h, w, base)
    if kind < 0.75 and colour:
        return glints(rng, h, w, base)
    fn = RECIPES[_pick(rng, colour)][0]
    return fn(rng, h, w, base)


def apply(rng: np.random.Generator, img: np.ndarray, colour: bool = True) -> np.ndarray | None:
    """Paint hard negatives onto ``img`` (HxWx3 float, modified in place).

    ``colour`` False (a monochrome image) leaves out the recipes in ``COLOUR_ONLY``.
    Returns a boolean mask of patches that should stay free of text, or None.
    """
    h, w = img.shape[:2]
    keep_free = np.zeros((h, w), bool)
    if rng.random() < 0.25:
        img[:] = np.clip(full_frame(rng, h, w, img.copy(), colour), 0, 1)
        return None
    for _ in range(int(rng.integers(1, 5))):
        x0, y0, x1, y1 = _rect(rng, h, w)
        ph, pw = y1 - y0, x1 - x0
        if ph < 4 or pw < 4:
            continue
        fn = RECIPES[_pick(rng, colour)][0]
        patch = fn(rng, ph, pw, img[y0:y1, x0:x1].copy())
        if rng.random() < 0.2:  # faint version
            alpha = float(rng.uniform(0.3, 0.8))
            patch = img[y0:y1, x0:x1] * (1 - alpha) + patch * alpha
        img[y0:y1, x0:x1] = np.clip(patch, 0, 1)
        if rng.random() < KEEP_FREE:
            keep_free[y0:y1, x0:x1] = True
    return keep_free
