"""DP-Pix: image pixelization with differential privacy (Fan, "Image Pixelization with
Differential Privacy", DBSec 2018; "Differential Privacy for Image Publication", TPDP 2019).

An image of values in [0, 1] is cut into cells of ``b`` x ``b`` pixels; each cell is replaced by
its mean plus Laplace noise and clipped to [0, 1] (Fan 2018, Algorithm 1)::

    P'(c) = clip( mean_{p in c} x(p) + Lap( m / (b^2 * eps) ), 0, 1 )

Two images are *m-neighbours* when they differ in at most ``m`` pixels; a cell mean then moves by
at most ``m * 1 / b^2`` (the value range is 1 here, 255 in Fan's 8-bit formulation), so noise of
scale ``m / (b^2 eps)`` makes the pixelized image eps-differentially private for m-neighbours
(the Laplace mechanism; every pixel lies in exactly one cell, so the cells compose in parallel).
PriCheXy-Net's comparison uses b = 8, m = 1, eps = 0.1 on 256 px images.

A cell cut short by the image's edge holds ``n < b^2`` pixels and gets noise of scale
``m / (n eps)``, so the guarantee holds there too (the published code drops such cells).
The noise comes from the ``rng`` given, so that the caller decides what makes it repeatable.
"""

from __future__ import annotations

import numpy as np

CELL = 8
NEIGHBOURHOOD = 1
EPSILON = 0.1


def cell_means(image: np.ndarray, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and pixel count of every b x b cell of a (H, W) image: two (ceil(H/b), ceil(W/b)) arrays."""
    h, w = image.shape
    gh, gw = -(-h // b), -(-w // b)
    padded = np.zeros((gh * b, gw * b), dtype=np.float64)
    padded[:h, :w] = image
    counts = np.zeros_like(padded)
    counts[:h, :w] = 1
    sums = padded.reshape(gh, b, gw, b).sum(axis=(1, 3))
    n = counts.reshape(gh, b, gw, b).sum(axis=(1, 3))
    return sums / n, n


def dp_pix(image: np.ndarray, rng: np.random.Generator, b: int = CELL, m: int = NEIGHBOURHOOD,
           eps: float = EPSILON) -> np.ndarray:
    """The eps-differentially private pixelization of ``image`` (H, W), values in [0, 1]; returns
    float32 (H, W) in [0, 1], constant on each cell."""
    if b < 1 or m < 1 or eps <= 0:
        raise ValueError("DP-Pix needs b >= 1, m >= 1 and eps > 0")
    h, w = image.shape
    means, n = cell_means(np.asarray(image, dtype=np.float64), b)
    noisy = np.clip(means + rng.laplace(0.0, m / (n * eps)), 0.0, 1.0)
    return np.repeat(np.repeat(noisy, b, axis=0), b, axis=1)[:h, :w].astype(np.float32)


def noise_scale(b: int = CELL, m: int = NEIGHBOURHOOD, eps: float = EPSILON) -> float:
    """The Laplace scale of a whole cell, in units of the value range."""
    return m / (b * b * eps)
