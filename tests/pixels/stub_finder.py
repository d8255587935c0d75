"""A deterministic, classical stand-in for models.inference.TextFinder in tests.

Used only when the shipped detector weights are absent (the real finder is used otherwise).
It finds what the synthetic test images draw: thin, white strokes (display value
>= 200) standing out from their surroundings (white top-hat), grouped into lines. It cannot
read; ``read`` answers from a ground-truth table when one is given (for policy tests).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from models.regions import TextRegion


def _gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 3:
        return image.min(axis=2)  # white text is white in every channel
    return image


class StubFinder:
    version = "stub-tophat-1"

    def __init__(self, truth: Sequence[tuple[tuple[int, int, int, int], str]] = ()):
        self.truth = list(truth)
        self.calls = 0

    def detect(self, image: np.ndarray) -> list[TextRegion]:
        """Lines of >= 3 bright thin glyphs of similar height (what the test images draw)."""
        self.calls += 1
        g = _gray(np.asarray(image))
        tophat = cv2.morphologyEx(g, cv2.MORPH_TOPHAT, np.ones((13, 13), np.uint8))
        ink = ((g >= 200) & (tophat >= 60)).astype(np.uint8)
        if ink.sum() < 12:
            return []
        n, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
        glyph = np.zeros(n, bool)
        for i in range(1, n):
            x, y, w, h, area = stats[i]
            glyph[i] = 3 <= h <= 48 and w <= 3 * h and area >= 4 and area <= 0.8 * w * h
        if glyph.sum() < 3:
            return []
        lines = cv2.morphologyEx(ink, cv2.MORPH_CLOSE, np.ones((3, 11), np.uint8))
        m, line_labels, lstats, _ = cv2.connectedComponentsWithStats(lines, connectivity=8)
        out = []
        for j in range(1, m):
            x, y, w, h, _ = lstats[j]
            members = np.unique(labels[(line_labels == j) & (ink > 0)])
            members = members[(members > 0) & glyph[members]]
            if len(members) < 3:
                continue
            heights = stats[members, 3]
            if heights.max() > 3 * max(1, np.median(heights)):
                continue
            out.append(TextRegion(max(0, x - 2), max(0, y - 2), x + w + 2, y + h + 2, 0.9))
        return out

    def detect_batch(self, images: list[np.ndarray]) -> list[list[TextRegion]]:
        return [self.detect(im) for im in images]

    def readings(self, image: np.ndarray, regions) -> list[tuple[str, float]]:
        """The true text of the line each region overlaps most, read with full confidence."""
        return [(text, 1.0 if text else 0.0) for text in self.read(image, regions)]

    def read(self, image: np.ndarray, regions) -> list[str]:
        texts = []
        for r in regions:
            best, text = 0, ""
            for (x0, y0, x1, y1), t in self.truth:
                overlap = max(0, min(x1, r.x1) - max(x0, r.x0)) * max(0, min(y1, r.y1) - max(y0, r.y0))
                if overlap > best:
                    best, text = overlap, t
            texts.append(text)
        return texts
