"""Compose a synthetic sample: modality background + scanner-like text + storage round trip.

Text is drawn in display space (`canvas`, where `layout` puts it), the image is degraded (noise,
blur, JPEG), then stored the way a modality would store it (signed CT with rescale, 10-16 bit
CR/DX, MONOCHROME1, RGB / YBR 4:2:2, or 0-255 kept in 16 bits with stale window tags) and rendered
back with `models.render.display_image`, so models train on exactly what the gateway shows them.
Lines are labelled as the rendered image shows them (`labels`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from pydicom.dataset import Dataset

from models.render import display_image
from models.training.synth import backgrounds, fonts, graphics, hard_negatives
from models.training.synth.canvas import Canvas, Line, choice, random_style
from models.training.synth.labels import labelled
from models.training.synth.layout import BLOCK_FNS, BLOCKS, font_size

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
#: Seed-sequence tag of the hard-negative generator, and the share of hard-negative images left without text.
HARD_NEGATIVE_STREAM = 7919
HARD_NEGATIVE_NO_TEXT = 0.15
#: Seed-sequence tag of the overflow generator (see `overflowed`).
OVERFLOW_STREAM = 7927
#: Seed-sequence tag of the scanner-graphics generator (`models.training.synth.graphics`).
GRAPHICS_STREAM = 7933


@dataclass(frozen=True)
class SynthConfig:
    font_split: str = "train"  # "train" or "test" (held-out families)
    modality_weights: dict = field(default_factory=lambda: dict(MODALITY_WEIGHTS))
    max_blocks: int = 6
    p_no_text: float = 0.1  # share of images with no text at all
    size_range: tuple[int, int] = (6, 60)  # font size in pixels
    real_backgrounds: bool = True  # pydicom's bundled images (slow first load); off in unit tests
    # Training only: probability per image of procedural hard negatives (`models.training.synth.hard_negatives`:
    # step wedges, test cards, glints, label maps...).  0 leaves every sample exactly as before.
    hard_negatives: float = 0.0
    # Training and its own evaluation only: probability per greyscale image that its background
    # overflowed 8 bits before the text was burned in (`overflowed`). 0 leaves every sample as before.
    overflow: float = 0.0
    # Probability per image of the graphics scanners draw beside their text (rulers and their numbers,
    # calipers, traces, bars, body markers, arrows, grids: `models.training.synth.graphics`), drawn
    # before the text with their own generator. 0 leaves every sample exactly as before.
    graphics: float = 0.0


@dataclass
class Sample:
    image: np.ndarray  # uint8 display image, HxW or HxWx3
    pixels: np.ndarray  # stored pixel values
    ds: Dataset  # the tags needed to render `pixels`
    lines: list[Line]
    modality: str


def _weighted(rng, weights: dict) -> str:
    keys = list(weights)
    p = np.array([weights[k] for k in keys], float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


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
    kind = choice(rng, prof["bg"])
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
    if config.graphics > 0:  # own generator too
        grng = np.random.default_rng([seed, index, GRAPHICS_STREAM])
        if grng.random() < config.graphics:
            graphics.draw(grng, canvas, modality, font_list)
    image_fonts = [choice(rng, font_list) for _ in range(2)]
    if rng.random() >= config.p_no_text and with_text:
        smin, smax = config.size_range
        small_image = max(h, w) <= 384
        if small_image:
            smin = max(5, smin - 1)
        for _ in range(int(rng.integers(1, config.max_blocks + 1))):
            block = _weighted(rng, BLOCKS)
            font = choice(rng, image_fonts)
            if small_image and rng.random() < 0.5:  # 4-6 px tall text on 256 px MR-like frames
                size = int(rng.integers(smin, smin + 4))
            else:
                size = font_size(rng, smin, min(smax, max(smin + 2, h // 6)))
            BLOCK_FNS[block](rng, canvas, font, size, random_style(rng, canvas))
    rgb = np.clip(canvas.img * 255 + 0.5, 0, 255).astype(np.uint8)
    kind = choice(rng, prof["storage"])
    rgb = degrade(rng, rgb, jpeg_ok=kind in ("rgb", "ybr", "gray8"))
    pixels, ds = store(rng, rgb, color, kind)
    image = display_image(pixels, ds)
    lines = [shown for line, ink in zip(canvas.lines, canvas.inks) if (shown := labelled(line, image, ink))]
    return Sample(image=image, pixels=pixels, ds=ds, lines=lines, modality=modality)
