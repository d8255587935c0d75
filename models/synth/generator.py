"""Compose a synthetic sample: modality background + scanner-like text + storage round trip.

Text is drawn in display space, the image is degraded (noise, blur, JPEG), then stored the way a
modality would store it (signed CT with rescale, 10-16 bit CR/DX, MONOCHROME1, RGB / YBR 4:2:2,
or 0-255 kept in 16 bits with stale window tags) and rendered back with `models.render.display_image`,
so models train on exactly what the gateway shows them.  Boxes are ink boxes measured from the
rendered glyph masks (x1/y1 exclusive).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np
from PIL import Image, ImageDraw
from pydicom.dataset import Dataset

from models.render import display_image
from models.synth import backgrounds, fonts, hard_negatives, text

Box = tuple[int, int, int, int]

#: Per-modality recipe: background kinds, colour or not, storage kinds, (min, max) image side.
PROFILES = {
    "ct": dict(bg=("ct", "ct", "real"), color=False, storage=("ct16", "ct16", "jsl"), size=(512, 512)),
    "cr": dict(bg=("xray", "xray", "real"), color=False, storage=("u16", "mono1", "jsl"), size=(600, 1024)),
    "mr": dict(bg=("mr", "real"), color=False, storage=("u16", "jsl", "gray8"), size=(256, 512)),
    "mg": dict(bg=("mammo",), color=False, storage=("u16", "jsl"), size=(600, 1024)),
    "us": dict(bg=("us",), color=True, storage=("rgb", "ybr", "gray8"), size=(400, 800)),
    "endo": dict(bg=("endo",), color=True, storage=("rgb", "ybr"), size=(400, 720)),
    "sc": dict(bg=("screen", "flat", "pattern", "photo"), color=True, storage=("rgb", "gray8"), size=(256, 1024)),
    "photo": dict(bg=("photo", "pattern"), color=True, storage=("rgb", "ybr", "gray8"), size=(256, 800)),
}
MODALITY_WEIGHTS = {"ct": 0.15, "cr": 0.15, "mr": 0.14, "mg": 0.06, "us": 0.2, "endo": 0.09, "sc": 0.15, "photo": 0.06}
GRAY_COLORS = ((255, 255, 255), (235, 235, 235), (200, 200, 200), (160, 160, 160), (0, 0, 0))
RGB_COLORS = ((255, 255, 255), (255, 255, 0), (0, 255, 0), (0, 255, 255), (200, 200, 200), (255, 160, 0),
              (120, 255, 120), (0, 0, 0), (255, 60, 60), (150, 150, 255))
#: Seed-sequence tag of the hard-negative generator, and the share of hard-negative images left without text.
HARD_NEGATIVE_STREAM = 7919
HARD_NEGATIVE_NO_TEXT = 0.15
#: Seed-sequence tag of the overflow generator (see `overflowed`).
OVERFLOW_STREAM = 7927
#: Layout blocks and their weights.
BLOCKS = {"corner": 0.42, "header": 0.12, "column": 0.12, "marker": 0.14, "scatter": 0.12, "rotated": 0.08}


@dataclass(frozen=True)
class SynthConfig:
    font_split: str = "train"  # "train" or "test" (held-out families)
    modality_weights: dict = field(default_factory=lambda: dict(MODALITY_WEIGHTS))
    max_blocks: int = 6
    p_no_text: float = 0.1  # share of images with no text at all
    size_range: tuple[int, int] = (6, 60)  # font size in pixels
    real_backgrounds: bool = True  # pydicom's bundled images (slow first load); off in unit tests
    # Training only: probability per image of procedural hard negatives (`models.synth.hard_negatives`:
    # step wedges, test cards, glints, label maps...).  0 leaves every sample exactly as before.
    hard_negatives: float = 0.0
    # Training and its own evaluation only: probability per greyscale image that its background
    # overflowed 8 bits before the text was burned in (`overflowed`). 0 leaves every sample as before.
    overflow: float = 0.0


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


@dataclass
class Sample:
    image: np.ndarray  # uint8 display image, HxW or HxWx3
    pixels: np.ndarray  # stored pixel values
    ds: Dataset  # the tags needed to render `pixels`
    lines: list[Line]
    modality: str


def _choice(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def _weighted(rng, weights: dict) -> str:
    keys = list(weights)
    p = np.array([weights[k] for k in keys], float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def font_size(rng, lo: int, hi: int, small_bias: float = 0.75) -> int:
    """Most burned-in text is small; sizes are skewed towards lo."""
    if rng.random() < small_bias:
        return int(rng.integers(lo, min(hi, max(lo + 1, 22))))
    return int(rng.integers(lo, hi + 1))


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


def _style(rng, canvas: Canvas) -> dict:
    palette = RGB_COLORS if canvas.color else GRAY_COLORS
    color = _choice(rng, palette)
    boxed = rng.random() < 0.15
    box_color = None
    if boxed:
        box_color = (0, 0, 0) if sum(color) > 300 else (255, 255, 255)
        if rng.random() < 0.3:
            box_color = tuple(int(c) for c in rng.integers(0, 256, 3)) if canvas.color else (int(rng.integers(0, 80)),) * 3
    return dict(color=color, box=box_color, antialias=rng.random() < 0.7, opacity=float(rng.uniform(0.8, 1.0)),
                low_contrast=rng.random() < 0.08)


def _line_gap(size: int, rng) -> int:
    return int(size * rng.uniform(1.15, 1.6))


def block_corner(rng, cv: Canvas, font, size, style):
    n = int(rng.integers(1, 7))
    corner = _choice(rng, ("tl", "tr", "bl", "br", "tc", "bc"))
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
        ph = text.Phrase(str((i + depth) * _choice(rng, (1, 2, 5))), False, "safe") if scale else (text.technical(rng) if rng.random() < 0.8 else text.phrase(rng))
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


def overflowed(rng, img: np.ndarray) -> np.ndarray:
    """A greyscale image (HxWx3 float in [0, 1]) whose values overflowed 8 bits: past white they start
    again from black (HxW float).

    A conversion to 8 bits that wraps instead of clipping leaves bands where the anatomy crosses
    the wrap, and noise straddling it turns each band's edge into black and white specks (two chest
    radiographs of the JohnSnowLabs corpus are like this, their text burned in after). The detector
    takes such specks for small text.
    """
    grey = img.mean(axis=-1)
    gain, offset = rng.uniform(1.2, 2.5), rng.uniform(-0.3, 0.6)
    noise = rng.normal(0.0, rng.uniform(0.01, 0.05), grey.shape).astype(np.float32)
    out = np.mod(grey * gain + offset + noise, 1.0)
    return (1.0 - out if rng.random() < 0.5 else out).astype(np.float32)


def degrade(rng, img: np.ndarray, jpeg_ok: bool) -> np.ndarray:
    """Noise, slight blur and JPEG artefacts (uint8 RGB in, uint8 RGB out)."""
    out = img.astype(np.float32)
    if rng.random() < 0.25:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.3, 0.9))
    if rng.random() < 0.5:
        out += rng.normal(0, rng.uniform(1, 8), out.shape[:2])[..., None].astype(np.float32)
    out = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    if jpeg_ok and rng.random() < 0.3:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 92))])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return out


def store(rng, img: np.ndarray, color: bool, kind: str) -> tuple[np.ndarray, Dataset]:
    """Encode a display image (uint8 RGB) as a modality would store it; returns pixels and tags."""
    ds = Dataset()
    ds.PhotometricInterpretation = "MONOCHROME2"
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img
    if kind == "rgb" and color:
        ds.PhotometricInterpretation = "RGB"
        return img, ds
    if kind == "ybr" and color:  # YBR_FULL_422 round trip: chroma at half horizontal resolution
        ycc = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb)
        chroma = cv2.resize(ycc[..., 1:], (max(1, img.shape[1] // 2), img.shape[0]), interpolation=cv2.INTER_AREA)
        ycc[..., 1:] = cv2.resize(chroma, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
        ds.PhotometricInterpretation = "RGB"
        return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB), ds
    if kind in ("gray8", "rgb", "ybr"):
        return gray, ds
    g = gray.astype(np.float32) / 255.0
    if kind == "jsl":  # display values kept in 16 bits with stale tags
        ds.BitsStored = int(rng.choice([10, 12, 14, 16]))
        ds.WindowCenter, ds.WindowWidth = float(rng.uniform(30, 8192)), float(rng.uniform(400, 24575))
        if rng.random() < 0.3:
            ds.RescaleSlope, ds.RescaleIntercept = 1.0, -1024.0
        if rng.random() < 0.3:
            ds.PhotometricInterpretation = "MONOCHROME1"
        return gray.astype(np.uint16), ds
    if kind == "ct16":
        wc, ww = float(rng.uniform(-600, 400)), float(rng.uniform(350, 2000))
        hu = (wc - ww / 2) + g * ww
        hu = np.where(gray >= 250, float(rng.uniform(wc + ww / 2, 3071)), hu)  # text burned at high HU
        ds.RescaleSlope, ds.RescaleIntercept = 1.0, -1024.0
        if rng.random() < 0.8:
            ds.WindowCenter, ds.WindowWidth = wc, ww
        return np.clip(hu + 1024, -2048, 32767).astype(np.int16), ds
    bits = int(rng.integers(10, 17))
    top = 2**bits - 1
    lo, hi = sorted(rng.uniform(0, top, 2))
    if hi - lo < top * 0.2:
        lo, hi = 0.0, float(top)
    stored = lo + g * (hi - lo)
    if kind == "mono1":
        stored = hi - g * (hi - lo) + lo
        ds.PhotometricInterpretation = "MONOCHROME1"
    ds.BitsStored = bits
    if rng.random() < 0.6:
        ds.WindowCenter, ds.WindowWidth = (lo + hi) / 2, hi - lo
    return np.clip(stored, 0, top).astype(np.uint16), ds


def generate(seed: int, index: int, config: SynthConfig = SynthConfig()) -> Sample:
    """One deterministic sample for (seed, index)."""
    rng = np.random.default_rng([seed, index])
    modality = _weighted(rng, config.modality_weights)
    prof = PROFILES[modality]
    lo, hi = prof["size"]
    h = int(rng.integers(lo, hi + 1))
    w = int(np.clip(h * rng.uniform(0.75, 1.35), lo * 0.75, hi * 1.2)) if lo != hi else h
    kind = _choice(rng, prof["bg"])
    if kind == "real" and not config.real_backgrounds:
        kind = prof["bg"][0]
    bg = backgrounds.background(rng, kind, h, w)
    color = prof["color"] and bg.ndim == 3 or (prof["color"] and rng.random() < 0.6)
    canvas = Canvas(bg.copy(), color)
    with_text = True
    if config.hard_negatives > 0:  # own generator: the default stream is untouched
        hrng = np.random.default_rng([seed, index, HARD_NEGATIVE_STREAM])
        if hrng.random() < config.hard_negatives:
            keep_free = hard_negatives.apply(hrng, canvas.img, colour=canvas.color)
            if keep_free is not None:
                canvas.taken |= keep_free
            with_text = hrng.random() >= HARD_NEGATIVE_NO_TEXT
    if config.overflow > 0 and not canvas.color:  # own generator too
        orng = np.random.default_rng([seed, index, OVERFLOW_STREAM])
        if orng.random() < config.overflow:
            canvas.img[:] = overflowed(orng, canvas.img)[..., None]
    font_list = fonts.split(config.font_split)
    image_fonts = [_choice(rng, font_list) for _ in range(2)]
    if rng.random() >= config.p_no_text and with_text:
        smin, smax = config.size_range
        small_image = max(h, w) <= 384
        if small_image:
            smin = max(5, smin - 1)
        for _ in range(int(rng.integers(1, config.max_blocks + 1))):
            block = _weighted(rng, BLOCKS)
            font = _choice(rng, image_fonts)
            if small_image and rng.random() < 0.5:  # 4-6 px tall text on 256 px MR-like frames
                size = int(rng.integers(smin, smin + 4))
            else:
                size = font_size(rng, smin, min(smax, max(smin + 2, h // 6)))
            BLOCK_FNS[block](rng, canvas, font, size, _style(rng, canvas))
    rgb = np.clip(canvas.img * 255 + 0.5, 0, 255).astype(np.uint8)
    kind = _choice(rng, prof["storage"])
    rgb = degrade(rng, rgb, jpeg_ok=kind in ("rgb", "ybr", "gray8"))
    pixels, ds = store(rng, rgb, color, kind)
    image = display_image(pixels, ds)
    lines = [shown for line, ink in zip(canvas.lines, canvas.inks) if (shown := labelled(line, image, ink))]
    return Sample(image=image, pixels=pixels, ds=ds, lines=lines, modality=modality)


#: Grey-level difference between glyph and surrounding pixels below which a line is not labelled.
MIN_CONTRAST = 16
#: Or, for a line partly over a bright part of the image and partly over a dark one, the share of a
#: word's ink that must stand out from the background around it by MIN_CONTRAST for the word to be
#: labelled.
MIN_VISIBLE_SHARE = 0.3


def labelled(line: Line, image: np.ndarray, ink: Ink) -> Line | None:
    """``line`` as the display image shows it (white on saturated white, stale windows...): less the
    characters hidden at its ends (a date whose first half lies on tissue of its own grey), then whole if
    it stands out as a whole, else the words of it that stand out where they are (a line running from a
    bright part of the image into a dark one), else nothing.

    Invisible text is nobody's PHI and no detector's target, so it is dropped from the labels.
    """
    region, on, off = _ink_and_background(image, ink)
    if not on.any() or not off.any():
        return line
    whole = np.abs(np.median(region[on], axis=0) - np.median(region[off], axis=0))
    line = _without_hidden_ends(line, ink, region, off)
    if float(whole.max()) >= MIN_CONTRAST:
        return line
    standing_out = _standing_out(region, on, off)
    y0, x0 = ink.y0, ink.x0
    words = []
    for word in line.words:
        wx0, wy0, wx1, wy1 = word.box
        area = (slice(max(0, wy0 - y0), max(0, wy1 - y0)), slice(max(0, wx0 - x0), max(0, wx1 - x0)))
        if on[area].any() and standing_out[area].sum() >= MIN_VISIBLE_SHARE * on[area].sum():
            words.append(word)
    if not words:
        return None
    if len(words) == len(line.words):
        return line
    box = (min(w.box[0] for w in words), min(w.box[1] for w in words),
           max(w.box[2] for w in words), max(w.box[3] for w in words))
    return replace(line, box=box, text=" ".join(w.text for w in words), words=tuple(words))


def _without_hidden_ends(line: Line, ink: Ink, region: np.ndarray, off: np.ndarray) -> Line:
    """``line`` less the characters at either end whose ink is within MIN_CONTRAST of the background
    around it, character by character: one part of a line may lie on tissue of its own grey.

    Only the ends are trimmed: a character hidden inside a line still belongs to a line a reader sees,
    and a redaction covers it anyway.
    """
    if ink.char_edges is None:
        return line
    on = ink.on
    edges = ink.char_edges - ink.x0
    rows = np.nonzero(on.any(axis=1))[0]
    band = slice(rows[0], rows[-1] + 1)  # a character is seen against the gaps beside it, not beyond a box
    hidden = []
    for k in range(len(line.text)):
        a, b = max(0, int(np.floor(edges[k]))), max(0, int(np.ceil(edges[k + 1])))
        glyph, around = on[band, a:b], off[band, a:b]
        if not glyph.any() or around.sum() < 3:  # too thin to judge: shown, as the line is
            hidden.append(line.text[k] == " ")
            continue
        pixels = region[band, a:b]
        contrast = np.abs(np.median(pixels[glyph], axis=0) - np.median(pixels[around], axis=0))
        hidden.append(float(contrast.max()) < MIN_CONTRAST)
    if all(hidden):
        return line
    first, last = hidden.index(False), len(hidden) - 1 - hidden[::-1].index(False)
    text = line.text[first:last + 1]
    if text == line.text.strip():
        return line
    x0, x1 = ink.x0 + int(np.floor(edges[first])), ink.x0 + int(np.ceil(edges[last + 1]))
    words, pos = [], 0
    for word in line.words:
        start = line.text.index(word.text, pos)
        pos = start + len(word.text)
        kept = word.text[max(0, first - start):max(0, last + 1 - start)]
        if kept:
            words.append(Word((max(word.box[0], x0), word.box[1], min(word.box[2], x1), word.box[3]), kept))
    if not words:
        return line
    box = (min(w.box[0] for w in words), min(w.box[1] for w in words),
           max(w.box[2] for w in words), max(w.box[3] for w in words))
    return replace(line, box=box, text=text, words=tuple(words))


def _ink_and_background(image: np.ndarray, ink: Ink):
    """A line's pixels (H, W, C float), its ink and the background its letters are seen against.

    The background is the gaps in and between the letters where there are enough of them: pixels
    beyond the ink may lie beyond a box drawn behind the text, and would lend the text the box's
    contrast with the image.
    """
    y0, x0, on = ink.y0, ink.x0, ink.on
    h, w = on.shape
    region = image[y0:y0 + h, x0:x0 + w].astype(np.float32)
    if region.ndim == 2:
        region = region[..., None]
    near = cv2.dilate(on.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    off = ~near
    if on.any():
        ys, xs = np.nonzero(on)
        inside = np.zeros_like(on)
        inside[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = True
        if (inside & off).sum() >= 4:
            off &= inside
    return region, on, off


def _standing_out(region: np.ndarray, on: np.ndarray, off: np.ndarray) -> np.ndarray:
    """The ink that differs by MIN_CONTRAST from the background within a text height of it: each letter
    is seen against what is around it, not against the line's average."""
    rows = np.nonzero(on.any(axis=1))[0]
    cols = np.nonzero(on.any(axis=0))[0]
    if not len(rows):
        return on.copy()
    side = 2 * min(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) + 1
    weight = cv2.boxFilter(off.astype(np.float32), -1, (side, side), normalize=False)
    seen = on & (weight > 0)
    contrast = np.zeros(on.shape, np.float32)
    for c in range(region.shape[2]):
        background = cv2.boxFilter(region[..., c] * off, -1, (side, side), normalize=False)
        contrast = np.maximum(contrast, np.abs(region[..., c] - background / np.maximum(weight, 1e-6)))
    return seen & (contrast >= MIN_CONTRAST)
