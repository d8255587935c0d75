"""Image-borne hard negatives: what an image itself shows that a text detector fires on.

Glints (rows of tiny bright specks), label maps (flat regions with sharp edges), thresholded or
posterised texture, blocky compression artefacts and CT streaks. Patch recipes as in
`models.training.synth.targets`; most of them work on ``base``, the content they replace.
"""

from __future__ import annotations

import cv2
import numpy as np

from models.training.synth import backgrounds
from models.training.synth.targets import random_colour


def glints(rng, ph, pw, base):
    """Specular highlights: strings and clusters of tiny bright specks (sun on water, wet mucosa, teeth)."""
    img = base.copy()
    spots = np.zeros((ph, pw), np.float32)
    for _ in range(int(rng.integers(2, 14))):  # strings of specks along gently curved lines
        y, x = rng.uniform(0, ph), rng.uniform(0, pw)
        length = int(rng.uniform(10, max(12, pw * 0.8)))
        slope = rng.normal(0, 0.15)
        gap = rng.uniform(1.5, 6)
        t = 0.0
        while t < length:
            px, py = int(x + t), int(y + slope * t + rng.normal(0, 1.5))
            r = int(rng.integers(0, 3))
            if rng.random() < 0.3:
                cv2.ellipse(spots, (px, py), (int(rng.integers(1, 6)), max(0, r)), 0, 0, 360, float(rng.uniform(0.6, 1)), -1)
            else:
                cv2.circle(spots, (px, py), r, float(rng.uniform(0.6, 1)), -1)
            t += gap * rng.uniform(0.5, 1.8)
    for _ in range(int(rng.integers(0, 6))):  # a few larger highlights
        cv2.ellipse(spots, (int(rng.integers(0, pw)), int(rng.integers(0, ph))), (int(rng.integers(2, 12)), int(rng.integers(1, 5))),
                    float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
    spots = cv2.GaussianBlur(spots, (0, 0), rng.uniform(0.4, 1.0))
    return np.clip(img * (1 - spots[..., None]) + spots[..., None] * rng.uniform(0.85, 1.0), 0, 1)


def label_map(rng, ph, pw, base=None):
    """Segmentation: flat labels with sharp edges (Voronoi cells or overlapping blobs), grey or a colour LUT."""
    k = int(rng.integers(3, 40))
    if rng.random() < 0.5:
        small = (max(2, ph // 4), max(2, pw // 4))
        seeds = rng.uniform(0, 1, (k, 2)) * [small[0], small[1]]
        yy, xx = np.mgrid[0:small[0], 0:small[1]]
        d = (yy[..., None] - seeds[:, 0]) ** 2 + (xx[..., None] - seeds[:, 1]) ** 2
        lab = cv2.resize(d.argmin(-1).astype(np.float32), (pw, ph), interpolation=cv2.INTER_NEAREST).astype(int)
    else:
        lab = np.zeros((ph, pw), np.int32)
        for i in range(1, k + 1):
            c = (int(rng.integers(0, pw)), int(rng.integers(0, ph)))
            axes = (int(rng.integers(2, max(3, pw // 4))), int(rng.integers(2, max(3, ph // 4))))
            cv2.ellipse(lab, c, axes, float(rng.uniform(0, 180)), 0, 360, i, -1)
    grey = rng.random() < 0.5
    lut = np.stack([random_colour(rng, grey) for _ in range(k + 1)])
    if rng.random() < 0.4:
        lut[0] = 0.0
    img = lut[lab % (k + 1)]
    if base is not None and rng.random() < 0.4:  # overlaid on the anatomy
        alpha = float(rng.uniform(0.3, 0.7))
        img = base * (1 - alpha) + img * alpha
    if rng.random() < 0.3:  # outlines only
        edges = cv2.morphologyEx(lab.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
        out = base.copy() if base is not None else np.zeros_like(img)
        out[edges] = img[edges]
        img = out
    return img.astype(np.float32)


def posterised(rng, ph, pw, base):
    """Thresholded or steeply windowed texture: black/white blobs at a few pixels' scale (bone windows, masks)."""
    scale = rng.uniform(2, 10)
    noise = backgrounds.smooth_noise(rng, ph, pw, scale)
    if base is not None and rng.random() < 0.5:
        noise = 0.5 * noise + 0.5 * base.mean(-1)
    levels = int(rng.integers(2, 5))
    img = np.floor(np.clip(noise, 0, 0.999) * levels) / max(1, levels - 1)
    if rng.random() < 0.5:  # blocky (nearest-neighbour upsampled) variant
        f = int(rng.integers(2, 5))
        img = cv2.resize(cv2.resize(img, (max(1, pw // f), max(1, ph // f)), interpolation=cv2.INTER_NEAREST), (pw, ph), interpolation=cv2.INTER_NEAREST)
    return np.repeat(img[..., None].astype(np.float32), 3, 2)


def blocky(rng, ph, pw, base):
    """Compression artefacts on the existing content: 8x8 block means, very low-quality JPEG, pixelation,
    or JPEG 2000-like ringing (down/up-sampling with a cubic kernel and coarse quantisation)."""
    img = base.copy()
    kind = int(rng.integers(4))
    if kind == 0:
        b = int(rng.choice([4, 8, 16]))
        hh, ww = ph // b * b, pw // b * b
        if hh and ww:
            blocks = img[:hh, :ww].reshape(hh // b, b, ww // b, b, 3).mean((1, 3))
            img[:hh, :ww] = np.repeat(np.repeat(blocks, b, 0), b, 1)
    elif kind == 1:
        u8 = np.clip(img * 255, 0, 255).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(2, 15))])
        if ok:
            img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.0
    elif kind == 2:
        f = int(rng.integers(3, 12))
        small = cv2.resize(img, (max(1, pw // f), max(1, ph // f)), interpolation=cv2.INTER_AREA)
        img = cv2.resize(small, (pw, ph), interpolation=cv2.INTER_NEAREST)
    else:
        f = rng.uniform(3, 8)
        small = cv2.resize(img, (max(1, int(pw / f)), max(1, int(ph / f))), interpolation=cv2.INTER_AREA)
        img = cv2.resize(small, (pw, ph), interpolation=cv2.INTER_CUBIC)
        img = np.round(img * 12) / 12
    return np.clip(img, 0, 1).astype(np.float32)


def streaks(rng, ph, pw, base):
    """CT streak / scatter artefacts: many thin parallel or radiating lines of low contrast."""
    img = base.copy()
    lines = np.zeros((ph, pw), np.float32)
    angle = rng.uniform(0, np.pi)
    for _ in range(int(rng.integers(20, 120))):
        a = angle + rng.normal(0, 0.08)
        x, y = rng.uniform(0, pw), rng.uniform(0, ph)
        L = max(ph, pw)
        cv2.line(lines, (int(x - L * np.cos(a)), int(y - L * np.sin(a))), (int(x + L * np.cos(a)), int(y + L * np.sin(a))),
                 float(rng.uniform(-1, 1)), 1)
    amp = rng.uniform(0.05, 0.25)
    return np.clip(img + lines[..., None] * amp, 0, 1)
