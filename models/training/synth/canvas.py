"""Drawing scanner-like text on a display-space image, with the exact ink boxes of lines and words.

`Canvas.place` draws one phrase where it fits without touching earlier lines, and records it as a
`Line` (with its `Word`s, boxed from the rendered glyph mask, x1/y1 exclusive) and its `Ink`, from
which `models.training.synth.labels` later tells which of it the stored image still shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from models.training.synth import fonts, text

Box = tuple[int, int, int, int]

#: Text colours (and so label colours) on greyscale and on colour images.
GRAY_COLORS = ((255, 255, 255), (235, 235, 235), (200, 200, 200), (160, 160, 160), (0, 0, 0))
RGB_COLORS = ((255, 255, 255), (255, 255, 0), (0, 255, 0), (0, 255, 255), (200, 200, 200), (255, 160, 0),
              (120, 255, 120), (0, 0, 0), (255, 60, 60), (150, 150, 255))


@dataclass(frozen=True)
class Word:
    box: Box
    text: str


@dataclass(frozen=True)
class Line:
    box: Box
    text: str
    phi: bool
    category: str
    words: tuple[Word, ...]
    #: Quarter turns counter-clockwise the line was drawn with (``np.rot90``'s k): 0, 1 or 3. A reader
    #: trained or scored on a line must turn it back the same way: a one-word line has no word order
    #: to tell the way from.
    turns: int = 0

    @property
    def rotated(self) -> bool:
        return self.turns != 0


@dataclass(frozen=True)
class Ink:
    """Where a line's glyphs were drawn, for telling afterwards which of them show."""

    y0: int
    x0: int
    on: np.ndarray  # the glyph mask (alpha > 0.5) from (y0, x0) on
    #: The image x of each character's left edge and of the last one's right edge; None for a rotated
    #: line, whose characters run down the image.
    char_edges: np.ndarray | None = None


def choice(rng, seq):
    """One item of ``seq``, drawn the way every part of the generator draws (one integer)."""
    return seq[int(rng.integers(len(seq)))]


def render_mask(message: str, font_path: str | None, size: int, antialias: bool):
    """Glyph mask (uint8) of one line, its ink box within the mask, per-word ink boxes, and the x of each
    character's left edge in the mask (and of the last one's right edge)."""
    font = fonts.load(fonts.for_text(font_path, message), size)
    left, top, right, bottom = font.getbbox(message)
    pad = 2
    width, height = max(1, right - left + 2 * pad), max(1, bottom - top + 2 * pad)
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    draw.fontmode = "L" if antialias else "1"
    origin = (pad - left, pad - top)
    draw.text(origin, message, font=font, fill=255)
    mask = np.asarray(canvas)
    char_edges = origin[0] + np.array([font.getlength(message[:k]) for k in range(len(message) + 1)])
    words: list[tuple[Box, str]] = []
    pos = 0
    for token in message.split(" "):
        if token:
            x_start, x_end = char_edges[pos], char_edges[pos + len(token)]
            a, b = max(0, int(np.floor(x_start)) - 1), min(width, int(np.ceil(x_end)) + 1)
            ys, xs = np.nonzero(mask[:, a:b] > 40)
            if len(xs):
                words.append(((a + int(xs.min()), int(ys.min()), a + int(xs.max()) + 1, int(ys.max()) + 1), token))
        pos += len(token) + 1
    ys, xs = np.nonzero(mask > 40)
    if not len(xs):
        return mask, None, [], None
    ink = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    return mask, ink, words, char_edges


def _rot_box(box: Box, k: int, h: int, w: int) -> Box:
    """Box in an (h, w) array after np.rot90(k) (k=1: counter-clockwise, k=3: clockwise)."""
    x0, y0, x1, y1 = box
    if k == 1:
        return (y0, w - x1, y1, w - x0)
    return (h - y1, x0, h - y0, x1)


class Canvas:
    """Display-space RGB float image plus bookkeeping of placed lines."""

    def __init__(self, image: np.ndarray, color: bool):
        self.img = image if image.ndim == 3 else np.repeat(image[..., None], 3, 2)
        self.h, self.w = self.img.shape[:2]
        self.color = color
        self.taken = np.zeros((self.h, self.w), bool)
        self.lines: list[Line] = []
        self.inks: list[Ink] = []  # per line, for the visibility check

    def free(self, box: Box, margin: int) -> bool:
        x0, y0, x1, y1 = box
        if x0 < 0 or y0 < 0 or x1 > self.w or y1 > self.h:
            return False
        return not self.taken[max(0, y0 - margin): y1 + margin, max(0, x0 - margin): x1 + margin].any()

    def place(self, rng, phrase: text.Phrase, font_path, size, x, y, style, rotate: int = 0, anchor="tl") -> Box | None:
        mask, ink, words, char_edges = render_mask(phrase.text, font_path, size, style["antialias"])
        if ink is None:
            return None
        if rotate:
            mh, mw = mask.shape
            mask = np.ascontiguousarray(np.rot90(mask, rotate))
            ink = _rot_box(ink, rotate, mh, mw)
            words = [(_rot_box(b, rotate, mh, mw), t) for b, t in words]
        ih, iw = ink[3] - ink[1], ink[2] - ink[0]
        if anchor == "tr":
            x = x - iw
        elif anchor in ("bl", "br"):
            y = y - ih
            if anchor == "br":
                x = x - iw
        ox, oy = int(x) - ink[0], int(y) - ink[1]
        box = (ox + ink[0], oy + ink[1], ox + ink[2], oy + ink[3])
        margin = max(2, min(ih, iw) // 3)
        if not self.free(box, margin):
            return None
        mh, mw = mask.shape
        # clip the mask placement to the image
        y0, x0 = max(0, oy), max(0, ox)
        y1, x1 = min(self.h, oy + mh), min(self.w, ox + mw)
        if y1 <= y0 or x1 <= x0:
            return None
        alpha = mask[y0 - oy: y1 - oy, x0 - ox: x1 - ox].astype(np.float32) / 255.0 * style["opacity"]
        region = self.img[y0:y1, x0:x1]
        if style["box"] is not None:
            pad = max(1, min(ih, iw) // 5)
            bx0, by0, bx1, by1 = max(0, box[0] - pad), max(0, box[1] - pad), min(self.w, box[2] + pad), min(self.h, box[3] + pad)
            self.img[by0:by1, bx0:bx1] = np.asarray(style["box"], np.float32) / 255.0
        color = np.asarray(style["color"], np.float32) / 255.0
        if style["low_contrast"]:
            local = region.reshape(-1, 3).mean(0)
            color = np.clip(local + np.sign(color.mean() - local.mean() + 1e-3) * rng.uniform(0.12, 0.25), 0, 1)
        self.img[y0:y1, x0:x1] = region * (1 - alpha[..., None]) + color * alpha[..., None]
        self.taken[box[1]:box[3], box[0]:box[2]] = True
        word_objs = tuple(Word((ox + b[0], oy + b[1], ox + b[2], oy + b[3]), t) for b, t in words)
        self.lines.append(Line(box, phrase.text, phrase.phi, phrase.category, word_objs, turns=rotate % 4))
        self.inks.append(Ink(y0, x0, alpha > 0.5, None if rotate else ox + char_edges))
        return box


def random_style(rng, canvas: Canvas) -> dict:
    """How one block's lines look (``Canvas.place``'s ``style``): a colour of the image's palette,
    sometimes a box behind the text, antialiasing, opacity, now and then barely any contrast."""
    palette = RGB_COLORS if canvas.color else GRAY_COLORS
    color = choice(rng, palette)
    boxed = rng.random() < 0.15
    box_color = None
    if boxed:
        box_color = (0, 0, 0) if sum(color) > 300 else (255, 255, 255)
        if rng.random() < 0.3:
            box_color = tuple(int(c) for c in rng.integers(0, 256, 3)) if canvas.color else (int(rng.integers(0, 80)),) * 3
    return dict(color=color, box=box_color, antialias=rng.random() < 0.7, opacity=float(rng.uniform(0.8, 1.0)),
                low_contrast=rng.random() < 0.08)
