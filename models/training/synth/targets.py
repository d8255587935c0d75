"""Test and calibration targets: text-free patterns drawn with the sharp edges and even strokes of type.

Step wedges, colour bars, line-pair resolution groups and sweeps, rings, checkerboards, grids,
periodic textures (lace, fabric, meshes) and rulers' tick marks without their numbers. Each is a
patch recipe ``(rng, ph, pw, base) -> ph x pw x 3`` float RGB in [0, 1] for
`models.training.synth.hard_negatives`; ``base`` is what the patch covers (unused by most).
"""

from __future__ import annotations

import cv2
import numpy as np

from models.training.synth import backgrounds


def random_colour(rng, grey: bool | None = None) -> np.ndarray:
    """An RGB colour in [0, 1]; a grey one when ``grey``, or two times in five when it is None."""
    if grey if grey is not None else rng.random() < 0.4:
        return np.full(3, rng.uniform(0, 1), np.float32)
    return rng.uniform(0, 1, 3).astype(np.float32)


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
            c = random_colour(rng)
            if vertical:
                img[:, bounds[k]:bounds[k + 1]] = c
            else:
                img[bounds[k]:bounds[k + 1]] = c
        if rng.random() < 0.5:  # a row of alternating blocks across the bars (castellations)
            y0 = int(ph * rng.uniform(0.2, 0.7))
            bh = int(np.clip(ph * rng.uniform(0.05, 0.2), 3, ph - y0))
            cell = int(rng.integers(6, 40))
            a, b = random_colour(rng), random_colour(rng)
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
    img = np.full((ph, pw, 3), random_colour(rng), np.float32)
    kind = int(rng.integers(6))
    fg = random_colour(rng).tolist()
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
    a, b = random_colour(rng), random_colour(rng)
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


def ruler(rng, ph, pw, base):
    """Tick marks of a ruler / depth scale WITHOUT numbers (minor, half and major ticks)."""
    img = base.copy()
    c = random_colour(rng).tolist() if rng.random() < 0.5 else [1.0, 1.0, 1.0]
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
