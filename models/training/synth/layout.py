"""Where text goes on a synthetic image: the blocks a scanner burns in.

Corner blocks of patient and study lines, header bars, ultrasound parameter columns and depth
scales, laterality markers, scattered words and lines set vertically; each block draws its
phrases on a `Canvas` in one font, size and style.
"""

from __future__ import annotations

from models.training.synth import text
from models.training.synth.canvas import Canvas, choice

#: Layout blocks and their weights.
BLOCKS = {"corner": 0.42, "header": 0.12, "column": 0.12, "marker": 0.14, "scatter": 0.12, "rotated": 0.08}


def font_size(rng, lo: int, hi: int, small_bias: float = 0.75) -> int:
    """Most burned-in text is small; sizes are skewed towards lo."""
    if rng.random() < small_bias:
        return int(rng.integers(lo, min(hi, max(lo + 1, 22))))
    return int(rng.integers(lo, hi + 1))


def _line_gap(size: int, rng) -> int:
    return int(size * rng.uniform(1.15, 1.6))


def block_corner(rng, cv: Canvas, font, size, style):
    n = int(rng.integers(1, 7))
    corner = choice(rng, ("tl", "tr", "bl", "br", "tc", "bc"))
    margin = int(rng.integers(2, max(3, cv.w // 20)))
    gap = _line_gap(size, rng)
    phrases = [text.phrase(rng) for _ in range(n)]
    top = corner[0] == "t"
    y = margin if top else cv.h - margin
    for ph in phrases if top else reversed(phrases):
        if corner[1] == "l":
            x, anchor = margin, ("tl" if top else "bl")
        elif corner[1] == "r":
            x, anchor = cv.w - margin, ("tr" if top else "br")
        else:
            x, anchor = int(cv.w * rng.uniform(0.25, 0.5)), ("tl" if top else "bl")
        cv.place(rng, ph, font, size, x, y, style, anchor=anchor)
        y = y + gap if top else y - gap


def block_header(rng, cv: Canvas, font, size, style):
    """A bar across the top or bottom with a few fields spaced apart."""
    bar_h = int(size * rng.uniform(1.4, 2.2))
    top = rng.random() < 0.7
    y0 = 0 if top else cv.h - bar_h
    if rng.random() < 0.7:
        shade = rng.uniform(0, 0.35) if rng.random() < 0.7 else rng.uniform(0.6, 0.9)
        # Painted over lines already drawn, the bar would hide half a line that stays labelled and leave
        # the other halves showing, unlabelled.
        if not cv.taken[y0:y0 + bar_h].any():
            cv.img[y0:y0 + bar_h] = shade
            style = dict(style, color=(255, 255, 255) if shade < 0.5 else (0, 0, 0), low_contrast=False, box=None)
    x = int(rng.integers(2, 20))
    while x < cv.w - 20:
        ph = text.phrase(rng)
        box = cv.place(rng, ph, font, size, x, y0 + (bar_h - size) // 2, style)
        x = (box[2] if box else x) + int(size * rng.uniform(1.5, 6))


def block_column(rng, cv: Canvas, font, size, style):
    """Ultrasound-style parameter column or a depth scale at a side."""
    right = rng.random() < 0.6
    x = cv.w - int(rng.integers(2, 30)) if right else int(rng.integers(2, 30))
    y = int(rng.integers(0, max(1, cv.h // 3)))
    scale = rng.random() < 0.3
    depth = int(rng.integers(0, 3))
    gap = _line_gap(size, rng) if not scale else int(rng.uniform(2.5, 6) * size)
    for i in range(int(rng.integers(3, 10))):
        ph = text.Phrase(str((i + depth) * choice(rng, (1, 2, 5))), False, "safe") if scale else (text.technical(rng) if rng.random() < 0.8 else text.phrase(rng))
        cv.place(rng, ph, font, size, x, y, style, anchor="tr" if right else "tl")
        y += gap
        if y > cv.h - size:
            break


def block_marker(rng, cv: Canvas, font, size, style):
    """A laterality or position marker, often large, anywhere over the anatomy."""
    ph = text.safe_word(rng) if rng.random() < 0.8 else text.phrase(rng)
    size = int(rng.integers(14, 61)) if rng.random() < 0.7 else size
    for _ in range(5):
        if cv.place(rng, ph, font, size, int(rng.integers(0, cv.w)), int(rng.integers(0, cv.h)), style):
            break


def block_scatter(rng, cv: Canvas, font, size, style):
    for _ in range(int(rng.integers(1, 5))):
        ph = text.phrase(rng)
        cv.place(rng, ph, font, size, int(rng.integers(0, cv.w)), int(rng.integers(0, cv.h)), style)


def block_rotated(rng, cv: Canvas, font, size, style):
    ph = text.phrase(rng)
    k = 1 if rng.random() < 0.5 else 3
    x = int(rng.integers(2, 30)) if rng.random() < 0.5 else cv.w - int(rng.integers(30, 60))
    cv.place(rng, ph, font, size, x, int(rng.integers(0, max(1, cv.h // 2))), style, rotate=k)


BLOCK_FNS = {"corner": block_corner, "header": block_header, "column": block_column, "marker": block_marker,
             "scatter": block_scatter, "rotated": block_rotated}
