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

from models.synth import backgrounds


def _colour(rng, grey: bool | None = None) -> np.ndarray:
    if grey if grey is not None else rng.random() < 0.4:
        return np.full(3, rng.uniform(0, 1), np.float32)
    return rng.uniform(0, 1, 3).astype(np.float32)


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


# ---------------------------------------------------------------- patch recipes: (rng, ph, pw) -> HxWx3


def step_wedge(rng, ph, pw, base=None):
    """Grey-level steps (5-21), either direction, optional separators, sometimes a pair of opposed wedges."""
    vertical = rng.random() < 0.35
    length = ph if vertical else pw
    n = int(rng.integers(5, 22))
    lo, hi = sorted(rng.uniform(0, 1, 2))
    if hi - lo < 0.3:
        lo, hi = 0.0, 1.0
    levels = np.linspace(lo, hi, n)
    if rng.random() < 0.5:
        levels = levels[::-1]
    idx = np.minimum((np.arange(length) * n) // max(1, length), n - 1)
    ramp = levels[idx].astype(np.float32)
    if rng.random() < 0.3:  # separators between steps
        edges = np.nonzero(np.diff(idx))[0]
        ramp[edges] = float(rng.uniform(0, 1))
    if rng.random() < 0.3:  # smooth shading across the wedge, like a radiograph of one
        ramp = ramp + np.linspace(0, rng.uniform(-0.2, 0.2), length).astype(np.float32)
    img = np.repeat(ramp[:, None], pw, 1) if vertical else np.repeat(ramp[None, :], ph, 0)
    if rng.random() < 0.3:  # second wedge in the other direction
        other = np.repeat(ramp[::-1, None], pw, 1) if vertical else np.repeat(ramp[None, ::-1], ph, 0)
        if vertical:
            img[:, pw // 2:] = other[:, pw // 2:]
        else:
            img[ph // 2:] = other[ph // 2:]
    tint = np.ones(3, np.float32) if rng.random() < 0.8 else rng.uniform(0.5, 1, 3).astype(np.float32)
    return np.clip(img[..., None] * tint, 0, 1)


SMPTE = np.array([[0.75, 0.75, 0.75], [0.75, 0.75, 0], [0, 0.75, 0.75], [0, 0.75, 0], [0.75, 0, 0.75],
                  [0.75, 0, 0], [0, 0, 0.75]], np.float32)


def colour_bars(rng, ph, pw, base=None):
    """SMPTE / EBU-like bars with castellations and a pluge, or random coloured bars."""
    img = np.zeros((ph, pw, 3), np.float32)
    if rng.random() < 0.5:
        n = len(SMPTE)
        cols = SMPTE * rng.uniform(0.8, 1.33)
        bounds = np.linspace(0, pw, n + 1).astype(int)
        y1, y2 = int(ph * rng.uniform(0.55, 0.7)), int(ph * rng.uniform(0.72, 0.8))
        for k in range(n):
            img[:y1, bounds[k]:bounds[k + 1]] = cols[k]
            img[y1:y2, bounds[k]:bounds[k + 1]] = cols[n - 1 - k] if k % 2 == 0 else 0.07
        # bottom: -I, white, +Q, black with a pluge (three near-black narrow bars)
        q = np.linspace(0, pw, 6).astype(int)
        for k, c in enumerate(([0, 0.13, 0.3], [1, 1, 1], [0.2, 0, 0.42], [0.07] * 3, [0.07] * 3)):
            img[y2:, q[k]:q[k + 1]] = c
        p0 = q[4]
        step = max(1, (pw - p0) // 4)
        for k, v in enumerate((0.03, 0.07, 0.11)):
            img[y2:, p0 + k * step // 1: p0 + (k + 1) * step // 1] = v
    else:
        n = int(rng.integers(3, 12))
        vertical = rng.random() < 0.8
        length = pw if vertical else ph
        bounds = np.linspace(0, length, n + 1).astype(int)
        for k in range(n):
            c = _colour(rng)
            if vertical:
                img[:, bounds[k]:bounds[k + 1]] = c
            else:
                img[bounds[k]:bounds[k + 1]] = c
        if rng.random() < 0.5:  # a row of alternating blocks across the bars (castellations)
            y0 = int(ph * rng.uniform(0.2, 0.7))
            bh = int(np.clip(ph * rng.uniform(0.05, 0.2), 3, ph - y0))
            cell = int(rng.integers(6, 40))
            a, b = _colour(rng), _colour(rng)
            for x in range(0, pw, cell):
                img[y0:y0 + bh, x:x + cell] = a if (x // cell) % 2 == 0 else b
    return img


def line_pairs(rng, ph, pw, base=None):
    """Resolution targets: groups of 2-5 bars of decreasing width, both orientations, or a frequency sweep."""
    bg, fg = (0.0, 1.0) if rng.random() < 0.5 else (1.0, 0.0)
    if rng.random() < 0.3:
        bg, fg = rng.uniform(0, 0.5), rng.uniform(0.5, 1)
    img = np.full((ph, pw), bg, np.float32)
    kind = int(rng.integers(3))
    if kind == 0:  # USAF-like groups laid out left to right
        x = int(rng.integers(0, 6))
        width = float(rng.uniform(2, 9))
        while x < pw - 2:
            bars = int(rng.integers(2, 6))
            bw = max(1, int(round(width)))
            length = int(np.clip(bw * rng.uniform(4, 8), 4, ph - 2))
            y = int(rng.integers(0, max(1, ph - length)))
            vertical_bars = rng.random() < 0.5
            for b in range(bars):
                if vertical_bars:
                    img[y:y + length, x + 2 * b * bw: x + (2 * b + 1) * bw] = fg
                else:
                    img[y + 2 * b * bw: y + (2 * b + 1) * bw, x: x + length] = fg
            x += (2 * bars * bw if vertical_bars else length) + int(bw * rng.uniform(1.5, 4))
            width = max(1.0, width * rng.uniform(0.6, 0.9))
    elif kind == 1:  # multiburst / sweep: bursts of increasing frequency
        xs = np.arange(pw, dtype=np.float32)
        n = int(rng.integers(3, 7))
        seg = np.minimum((xs * n / pw).astype(int), n - 1)
        freq = np.geomspace(rng.uniform(0.08, 0.3), rng.uniform(0.8, 2.5), n)[seg]
        wave = 0.5 + 0.5 * np.sin(xs * freq)
        if rng.random() < 0.5:
            wave = (wave > 0.5).astype(np.float32)
        img[:] = bg + (fg - bg) * wave[None, :]
        if rng.random() < 0.5:
            img = np.ascontiguousarray(img.T) if ph == pw else cv2.resize(img.T, (pw, ph), interpolation=cv2.INTER_NEAREST)
    else:  # converging lines (hyperbolic wedge) or a Siemens star
        if rng.random() < 0.5:
            n = int(rng.integers(4, 12))
            for k in range(n):
                a = k / max(1, n - 1)
                cv2.line(img, (0, int(a * (ph - 1))), (pw - 1, int(ph / 2 + (a - 0.5) * ph * rng.uniform(0.05, 0.3))), float(fg), 1)
        else:
            c = (pw // 2, ph // 2)
            r = min(ph, pw) // 2
            spokes = int(rng.integers(8, 36))
            for k in range(spokes):
                t0, t1 = 2 * np.pi * k / spokes, 2 * np.pi * (k + 0.5) / spokes
                pts = np.array([c, (c[0] + r * np.cos(t0), c[1] + r * np.sin(t0)), (c[0] + r * np.cos(t1), c[1] + r * np.sin(t1))], np.int32)
                cv2.fillConvexPoly(img, pts, float(fg))
    return np.repeat(img[..., None], 3, 2)


def geometric(rng, ph, pw, base=None):
    """Rings, circles, crosshairs, checkerboards, grids, dot lattices, diagonal hatching."""
    img = np.full((ph, pw, 3), _colour(rng), np.float32)
    kind = int(rng.integers(6))
    fg = _colour(rng).tolist()
    if kind == 0:
        c = (int(rng.integers(0, pw)), int(rng.integers(0, ph)))
        step = int(rng.integers(3, 20))
        for r in range(step, max(ph, pw), step):
            cv2.circle(img, c, r, fg, int(rng.integers(1, max(2, step // 2))))
    elif kind == 1:
        cell = int(rng.integers(3, 30))
        yy, xx = np.mgrid[0:ph, 0:pw]
        on = ((yy // cell) + (xx // cell)) % 2 == 1
        img[on] = fg
    elif kind == 2:
        step = int(rng.integers(5, 40))
        thick = int(rng.integers(1, 3))
        for x in range(int(rng.integers(0, step)), pw, step):
            cv2.line(img, (x, 0), (x, ph), fg, thick)
        for y in range(int(rng.integers(0, step)), ph, step):
            cv2.line(img, (0, y), (pw, y), fg, thick)
    elif kind == 3:
        step = int(rng.integers(4, 24))
        rad = int(rng.integers(1, max(2, step // 3)))
        for y in range(step // 2, ph, step):
            for x in range(step // 2, pw, step):
                cv2.circle(img, (x, y), rad, fg, -1)
    elif kind == 4:
        step = int(rng.integers(3, 16))
        for d in range(-ph, pw, step):
            cv2.line(img, (d, 0), (d + ph, ph), fg, 1)
            if rng.random() < 0.3:
                cv2.line(img, (d + ph, 0), (d, ph), fg, 1)
    else:  # a few crosshairs, circles and squares
        for _ in range(int(rng.integers(1, 8))):
            x, y, s = int(rng.integers(0, pw)), int(rng.integers(0, ph)), int(rng.integers(4, 40))
            shape = int(rng.integers(3))
            if shape == 0:
                cv2.line(img, (x - s, y), (x + s, y), fg, 1)
                cv2.line(img, (x, y - s), (x, y + s), fg, 1)
            elif shape == 1:
                cv2.circle(img, (x, y), s, fg, int(rng.integers(1, 4)))
            else:
                cv2.rectangle(img, (x - s, y - s), (x + s, y + s), fg, int(rng.integers(1, 3)))
    return img


def periodic(rng, ph, pw, base=None):
    """Periodic textures: lace (a tiled random motif), fabric weave, meshes."""
    a, b = _colour(rng), _colour(rng)
    kind = int(rng.integers(3))
    if kind == 0:  # lace: tile a small random motif
        cell = int(rng.integers(5, 24))
        motif = np.zeros((cell, cell), np.float32)
        for _ in range(int(rng.integers(1, 5))):
            if rng.random() < 0.5:
                cv2.circle(motif, (int(rng.integers(0, cell)), int(rng.integers(0, cell))), int(rng.integers(1, max(2, cell // 2))), 1.0, int(rng.integers(-1, 2)) or 1)
            else:
                cv2.line(motif, (int(rng.integers(0, cell)), int(rng.integers(0, cell))), (int(rng.integers(0, cell)), int(rng.integers(0, cell))), 1.0, 1)
        mask = np.tile(motif, (ph // cell + 1, pw // cell + 1))[:ph, :pw]
        if rng.random() < 0.5:
            mask = cv2.GaussianBlur(mask, (0, 0), 0.6)
    elif kind == 1:  # fabric weave
        period = rng.uniform(3, 14, 2)
        yy, xx = np.mgrid[0:ph, 0:pw].astype(np.float32)
        warp = np.sin(2 * np.pi * xx / period[0]) * (np.sin(2 * np.pi * yy / (2 * period[1])) > 0)
        weft = np.sin(2 * np.pi * yy / period[1]) * (np.sin(2 * np.pi * yy / (2 * period[1])) <= 0)
        mask = 0.5 + 0.5 * (warp + weft)
        mask += (backgrounds.smooth_noise(rng, ph, pw, 30) - 0.5) * 0.3
    else:  # mesh: hexagonal / diamond lines
        step = int(rng.integers(5, 25))
        mask = np.zeros((ph, pw), np.float32)
        for d in range(-ph * 2, pw + ph * 2, step):
            cv2.line(mask, (d, 0), (d + ph // 2, ph), 1.0, 1)
            cv2.line(mask, (d, 0), (d - ph // 2, ph), 1.0, 1)
        if rng.random() < 0.5:
            for y in range(0, ph, step):
                cv2.line(mask, (0, y), (pw, y), 1.0, 1)
    mask = np.clip(mask, 0, 1)[..., None]
    return a * (1 - mask) + b * mask


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
    lut = np.stack([_colour(rng, grey) for _ in range(k + 1)])
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


def ruler(rng, ph, pw, base):
    """Tick marks of a ruler / depth scale WITHOUT numbers (minor, half and major ticks)."""
    img = base.copy()
    c = _colour(rng).tolist() if rng.random() < 0.5 else [1.0, 1.0, 1.0]
    vertical = ph > pw
    length = ph if vertical else pw
    depth = pw if vertical else ph
    step = int(rng.integers(3, 16))
    major = int(rng.choice([5, 10]))
    base_line = rng.random() < 0.6
    for k, t in enumerate(range(int(rng.integers(0, step)), length, step)):
        tick = max(2, int(depth * (0.9 if k % major == 0 else 0.6 if k % 5 == 0 else 0.35)))
        if vertical:
            cv2.line(img, (0, t), (min(pw - 1, tick), t), c, 1)
        else:
            cv2.line(img, (t, 0), (t, min(ph - 1, tick)), c, 1)
    if base_line:
        if vertical:
            cv2.line(img, (0, 0), (0, ph), c, 1)
        else:
            cv2.line(img, (0, 0), (pw, 0), c, 1)
    if rng.random() < 0.5:  # mirrored so the ticks hang from either side
        img = img[:, ::-1] if vertical else img[::-1]
    return np.ascontiguousarray(img)


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
    names = [n for n in RECIPES if colour or n not in COLOUR_ONLY]
    p = np.array([RECIPES[n][1] for n in names])
    return names[int(rng.choice(len(names), p=p / p.sum()))]


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
        img[y0:y1, x0:x1] = _colour(rng)
    return img


def full_frame(rng, h: int, w: int, base: np.ndarray, colour: bool = True) -> np.ndarray:
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
