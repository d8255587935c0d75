"""A detector network over an image of any size: tiles, batches, probability maps at stride 2.

Every look sees its image through these. A large image is cut into overlapping tiles, so that
the network's memory stays bounded and a line across a tile border is whole in one of them; images
of one shape share a network call, which is what a GPU worker needs.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

#: A detector network: float32 NCHW images in [0, 1] -> logits at stride 2 (`models.runtime`).
Network = Callable[[np.ndarray], np.ndarray]

#: Tile side (working resolution) and overlap for large images.
TILE = 1024
OVERLAP = 96
#: Images (of one size) per network call, unless the network says otherwise (its ``batch``: a CPU
#: runtime says 1, see ``models.runtime``).
DETECT_BATCH = 16


def tile_origins(h: int, w: int) -> list[tuple[int, int]]:
    """Top-left corners of the TILE-sided tiles, OVERLAP apart, a working image is seen in."""
    step = TILE - OVERLAP
    ys = list(range(0, max(1, h - OVERLAP), step)) if h > TILE else [0]
    xs = list(range(0, max(1, w - OVERLAP), step)) if w > TILE else [0]
    return [(y, x) for y in ys for x in xs]


def keep_higher(out: np.ndarray, prob: np.ndarray, y: int, x: int) -> None:
    """Raise ``out`` (a whole image's map, stride 2) to a tile's map ``prob`` from working pixel (y, x)."""
    view = out[y // 2:y // 2 + prob.shape[0], x // 2:x // 2 + prob.shape[1]]
    np.maximum(view, prob[: view.shape[0], : view.shape[1]], out=view)


def at_scale(image: np.ndarray, scale: float) -> np.ndarray:
    """``image`` resized to the working scale (itself when that is 1)."""
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR) if scale != 1 else image


def run_tiles(network: Network, tiles: list[np.ndarray]) -> list[np.ndarray]:
    """Probability maps (stride 2) of same-shaped uint8 tiles, in one call of ``network``. The
    tiles are padded to a multiple of 16 (the network's deepest stride) by repeating their edges."""
    th, tw = tiles[0].shape
    ph, pw = (-th) % 16, (-tw) % 16
    x = np.stack([cv2.copyMakeBorder(t, 0, ph, 0, pw, cv2.BORDER_REPLICATE) if ph or pw else t for t in tiles])
    logits = network((x.astype(np.float32) / 255.0)[:, None])[:, 0, : (th + 1) // 2, : (tw + 1) // 2]
    return list(1.0 / (1.0 + np.exp(-logits)))


def prob_map(network: Network, gray: np.ndarray) -> np.ndarray:
    """Probability map at stride 2 of a working-resolution greyscale image, tiled if large."""
    h, w = gray.shape
    if h <= TILE and w <= TILE:
        return run_tiles(network, [gray])[0]
    out = np.zeros(((h + 1) // 2, (w + 1) // 2), np.float32)
    for y, x in tile_origins(h, w):
        (prob,) = run_tiles(network, [gray[y:y + TILE, x:x + TILE]])
        keep_higher(out, prob, y, x)
    return out


def prob_maps(network: Network, works: list[np.ndarray]) -> list[np.ndarray]:
    """``prob_map`` of each image; single-tile images of one shape share network calls."""
    out: list[np.ndarray | None] = [None] * len(works)
    same_shape: dict[tuple[int, int], list[int]] = {}
    for i, work in enumerate(works):
        if max(work.shape) <= TILE:
            same_shape.setdefault(work.shape, []).append(i)
        else:
            out[i] = prob_map(network, work)
    for members in same_shape.values():
        for i, prob in zip(members, run_batched(network, [works[i] for i in members]), strict=True):
            out[i] = prob
    return out


def run_batched(network: Network, tiles: list[np.ndarray]) -> list[np.ndarray]:
    """``run_tiles`` over same-shaped tiles, the network's ``batch`` (else DETECT_BATCH) per call."""
    size = getattr(network, "batch", DETECT_BATCH)
    return [prob for start in range(0, len(tiles), size) for prob in run_tiles(network, tiles[start:start + size])]
