"""The graphics scanners draw beside their text, as negatives (``SynthConfig.graphics``).

A detector that has only seen text and anatomy takes a depth ruler's ticks, a caliper's cross or
an ECG trace for text, and the gateway erases them: the image loses its scale, its measurements,
its timing. These recipes draw them: depth and distance rulers (ticks, and beside the major ticks
their numbers, which *are* text and are placed through `Canvas.place`, so they come labelled),
calipers and measurement crosses with their dotted lines, ECG and respiratory traces, grey and
colour bars, body-marker pictograms with the probe's bar, orientation arrows and the vendor's
triangle, and grids. Nothing else here draws a glyph, so nothing else needs a label.

Every graphic is drawn before the text and its area is marked taken, so the generator's text is
never drawn over it (a region touching a text line counts as text in the evaluation). The
recipes draw with their own random generator: with the switch at 0 every sample is as before.
"""

from __future__ import annotations

import cv2
import numpy as np

from models.training.synth import text
from models.training.synth.canvas import Canvas, choice, random_style

#: Graphic colours: scanners draw them white, grey, yellow, green or cyan.
COLOURS = ((1.0, 1.0, 1.0), (0.8, 0.8, 0.8), (0.6, 0.6, 0.6), (1.0, 1.0, 0.0), (0.0, 1.0, 0.0), (0.0, 1.0, 1.0))


def _colour(rng, canvas: Canvas) -> tuple[float, float, float]:
    c = choice(rng, COLOURS)
    return c if canvas.color else (float(np.mean(c)),) * 3


def _take(canvas: Canvas, x0: int, y0: int, x1: int, y1: int, margin: int = 2) -> None:
    canvas.taken[max(0, y0 - margin):max(0, y1 + margin), max(0, x0 - margin):max(0, x1 + margin)] = True


def ruler(rng, canvas: Canvas, font: str | None) -> None:
    """A depth (vertical) or distance (horizontal) scale: minor and major ticks, numbers at the
    major ones (labelled text) or none."""
    h, w = canvas.h, canvas.w
    vertical = rng.random() < 0.75
    length = int((h if vertical else w) * rng.uniform(0.4, 0.9))
    step = int(rng.integers(4, 13))
    major = int(choice(rng, (2, 5, 10)))
    minor_len, major_len = int(rng.integers(2, 6)), int(rng.integers(5, 11))
    colour, thick = _colour(rng, canvas), 1 if rng.random() < 0.85 else 2
    numbers = rng.random() < 0.6
    size = int(rng.integers(7, 15))
    style = {**random_style(rng, canvas), "color": tuple(int(255 * c) for c in colour), "box": None, "low_contrast": False}
    if vertical:
        x = int(rng.integers(2, max(3, w // 8))) if rng.random() < 0.3 else w - int(rng.integers(major_len + 3, max(major_len + 4, w // 6)))
        y0 = int(rng.integers(0, max(1, h - length)))
        spine = rng.random() < 0.4
        for k, y in enumerate(range(y0, y0 + length, step)):
            tick = major_len if k % major == 0 else minor_len
            cv2.line(canvas.img, (x, y), (x + tick, y), colour, thick)
            if numbers and k % major == 0 and k:
                canvas.place(rng, text.Phrase(str(k // major), False, "safe"), font, size, x - 3, y - size // 2, style, anchor="tr")
        if spine:
            cv2.line(canvas.img, (x, y0), (x, y0 + length), colour, 1)
        _take(canvas, x, y0, x + major_len + 1, y0 + length)
    else:
        y = h - int(rng.integers(major_len + 3, max(major_len + 4, h // 8)))
        x0 = int(rng.integers(0, max(1, w - length)))
        for k, x in enumerate(range(x0, x0 + length, step)):
            tick = major_len if k % major == 0 else minor_len
            cv2.line(canvas.img, (x, y), (x, y - tick), colour, thick)
            if numbers and k % major == 0 and k:
                canvas.place(rng, text.Phrase(str(k // major), False, "safe"), font, size, x - size // 3, y + 3, style)
        _take(canvas, x0, y - major_len, x0 + length, y + 1)


def calipers(rng, canvas: Canvas, font: str | None) -> None:
    """Pairs of measurement crosses ('+' or 'x'), often joined by a dotted line."""
    h, w = canvas.h, canvas.w
    colour = _colour(rng, canvas)
    for _ in range(int(rng.integers(1, 4))):
        a = np.array([rng.integers(w // 8, 7 * w // 8), rng.integers(h // 8, 7 * h // 8)])
        b = np.clip(a + rng.integers(-w // 3, w // 3 + 1, 2), 8, [w - 9, h - 9])
        r = int(rng.integers(3, 7))
        diagonal = rng.random() < 0.4
        for cx, cy in (a, b):
            cx, cy = int(cx), int(cy)
            if diagonal:
                cv2.line(canvas.img, (cx - r, cy - r), (cx + r, cy + r), colour, 1)
                cv2.line(canvas.img, (cx - r, cy + r), (cx + r, cy - r), colour, 1)
            else:
                cv2.line(canvas.img, (cx - r, cy), (cx + r, cy), colour, 1)
                cv2.line(canvas.img, (cx, cy - r), (cx, cy + r), colour, 1)
            _take(canvas, cx - r, cy - r, cx + r + 1, cy + r + 1)
        if rng.random() < 0.6:
            n = max(2, int(np.hypot(*(b - a)) // int(rng.integers(4, 9))))
            for t in np.linspace(0, 1, n)[1:-1]:
                px, py = (a + t * (b - a)).astype(int)
                cv2.circle(canvas.img, (int(px), int(py)), 0, colour, -1)
                _take(canvas, int(px), int(py), int(px) + 1, int(py) + 1, 1)


def trace(rng, canvas: Canvas, font: str | None) -> None:
    """An ECG (QRS spikes) or respiratory (slow wave) trace along the bottom or across the image."""
    h, w = canvas.h, canvas.w
    x0 = int(rng.integers(0, w // 4))
    x1 = int(w - rng.integers(0, w // 4))
    base = int(h - rng.integers(12, max(13, h // 5))) if rng.random() < 0.7 else int(rng.integers(h // 4, 3 * h // 4))
    amp = float(rng.uniform(5, 25))
    xs = np.arange(x0, x1)
    if rng.random() < 0.7:
        period = float(rng.uniform(30, 90))
        phase = (xs - x0 + rng.uniform(0, period)) % period / period
        ys = amp * (np.exp(-((phase - 0.5) / 0.02) ** 2) - 0.25 * np.exp(-((phase - 0.55) / 0.03) ** 2)
                    + 0.15 * np.exp(-((phase - 0.8) / 0.06) ** 2))
    else:
        ys = amp * 0.5 * np.sin((xs - x0) / rng.uniform(15, 40))
    ys = ys + rng.normal(0, 0.4, len(xs))
    points = np.stack([xs, base - ys], 1).astype(np.int32)
    cv2.polylines(canvas.img, [points], False, _colour(rng, canvas), int(rng.integers(1, 3)), cv2.LINE_AA)
    _take(canvas, x0, int(base - amp - 2), x1, int(base + amp * 0.3 + 2))


def bar(rng, canvas: Canvas, font: str | None) -> None:
    """A grey or colour bar (a vertical strip of the display's map), at a side."""
    h, w = canvas.h, canvas.w
    bw, bh = int(rng.integers(5, 18)), int(h * rng.uniform(0.2, 0.6))
    x = int(rng.integers(2, 12)) if rng.random() < 0.5 else w - bw - int(rng.integers(2, 30))
    y = int(rng.integers(0, max(1, h - bh)))
    ramp = np.linspace(1, 0, bh, dtype=np.float32)
    if canvas.color and rng.random() < 0.6:
        strip = cv2.applyColorMap((ramp * 255).astype(np.uint8)[:, None], choice(rng, (cv2.COLORMAP_JET, cv2.COLORMAP_HOT, cv2.COLORMAP_BONE)))
        strip = strip[:, 0, ::-1].astype(np.float32) / 255
    else:
        strip = np.repeat(ramp[:, None], 3, 1)
    canvas.img[y:y + bh, x:x + bw] = strip[:, None, :]
    _take(canvas, x, y, x + bw, y + bh)


def body_marker(rng, canvas: Canvas, font: str | None) -> None:
    """A body-marker pictogram: an outline (breast, abdomen, head) with the probe's bar across it."""
    h, w = canvas.h, canvas.w
    s = int(rng.integers(16, 44))
    cx, cy = int(rng.integers(s, max(s + 1, w - s))), int(h - s - rng.integers(2, max(3, h // 6)))
    colour = _colour(rng, canvas)
    kind = rng.random()
    if kind < 0.4:
        cv2.ellipse(canvas.img, (cx, cy), (s // 2, s // 2), 0, 180, 360, colour, 1)
        cv2.line(canvas.img, (cx - s // 2, cy), (cx + s // 2, cy), colour, 1)
    elif kind < 0.7:
        cv2.ellipse(canvas.img, (cx, cy), (s // 3, s // 2), 0, 0, 360, colour, 1)
        cv2.circle(canvas.img, (cx, cy - s // 2 - s // 6), s // 6, colour, 1)
    else:
        cv2.rectangle(canvas.img, (cx - s // 2, cy - s // 2), (cx + s // 2, cy + s // 2), colour, 1)
    angle = rng.uniform(0, np.pi)
    dx, dy = int(np.cos(angle) * s / 4), int(np.sin(angle) * s / 4)
    cv2.line(canvas.img, (cx - dx, cy - dy), (cx + dx, cy + dy), colour, int(rng.integers(2, 4)))
    _take(canvas, cx - s // 2 - 2, cy - s, cx + s // 2 + 3, cy + s // 2 + 3)


def arrow(rng, canvas: Canvas, font: str | None) -> None:
    """An orientation arrow, or the vendor's orientation triangle at the top of a sector."""
    h, w = canvas.h, canvas.w
    colour = _colour(rng, canvas)
    x, y = int(rng.integers(10, w - 10)), int(rng.integers(10, h - 10))
    if rng.random() < 0.5:
        length = int(rng.integers(10, 40))
        angle = rng.uniform(0, 2 * np.pi)
        end = (int(np.clip(x + length * np.cos(angle), 0, w - 1)), int(np.clip(y + length * np.sin(angle), 0, h - 1)))
        cv2.arrowedLine(canvas.img, (x, y), end, colour, 1, tipLength=0.35)
        _take(canvas, min(x, end[0]) - 3, min(y, end[1]) - 3, max(x, end[0]) + 4, max(y, end[1]) + 4)
    else:
        s = int(rng.integers(5, 12))
        pts = np.array([[x - s, y], [x + s, y], [x, y + s]], np.int32)
        cv2.fillPoly(canvas.img, [pts], colour) if rng.random() < 0.5 else cv2.polylines(canvas.img, [pts], True, colour, 1)
        _take(canvas, x - s, y, x + s + 1, y + s + 1)


def grid(rng, canvas: Canvas, font: str | None) -> None:
    """A grid of thin (often dotted) lines over part of the image."""
    h, w = canvas.h, canvas.w
    x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
    x1, y1 = int(x0 + w * rng.uniform(0.25, 0.5)), int(y0 + h * rng.uniform(0.25, 0.5))
    step, dot = int(rng.integers(8, 40)), int(rng.integers(1, 5))
    colour = _colour(rng, canvas)
    alpha = float(rng.uniform(0.4, 1.0))
    layer = np.zeros((h, w), np.float32)
    for x in range(x0, min(w, x1), step):
        layer[y0:y1:dot if dot > 1 else 1, x] = 1
    for y in range(y0, min(h, y1), step):
        layer[y, x0:x1:dot if dot > 1 else 1] = 1
    a = (layer * alpha)[..., None]
    canvas.img[:] = canvas.img * (1 - a) + np.asarray(colour, np.float32) * a
    _take(canvas, x0, y0, min(w, x1), min(h, y1), 0)


#: Recipes and their weights on ultrasound, and on every other modality.
RECIPES = {"ruler": ruler, "calipers": calipers, "trace": trace, "bar": bar, "body_marker": body_marker,
           "arrow": arrow, "grid": grid}
WEIGHTS_US = {"ruler": 0.3, "calipers": 0.2, "trace": 0.15, "bar": 0.1, "body_marker": 0.15, "arrow": 0.05, "grid": 0.05}
WEIGHTS_OTHER = {"ruler": 0.2, "calipers": 0.15, "trace": 0.1, "bar": 0.2, "body_marker": 0.05, "arrow": 0.15, "grid": 0.15}


def draw(rng: np.random.Generator, canvas: Canvas, modality: str, fonts: tuple) -> None:
    """One to four graphics on ``canvas``, before its text (ultrasound gets more, and more rulers)."""
    weights = WEIGHTS_US if modality == "us" else WEIGHTS_OTHER
    names = list(weights)
    p = np.array([weights[n] for n in names])
    font = choice(rng, fonts)
    for _ in range(int(rng.integers(1, 5 if modality == "us" else 3))):
        RECIPES[names[int(rng.choice(len(names), p=p / p.sum()))]](rng, canvas, font)
