"""Set aside what is drawn rather than written: dotted grids, traces, rulers and lone stroke figures.

The unread look (`models.looks.unread`) judges a region by what the two other networks say, and
only a region one line tall. What it leaves on scanner graphics is what they cannot tell from text:
a dotted grid the recogniser reads as "Saeeeee", an ECG trace or two grid rows merged into a region
taller than a line, a ruler's ticks read as "1111111111" at 0.46, a caliper's cross or a body
marker read as one letter. Their ink (`ink`: the stronger polarity of a top-hat) shows what they
are (`drawn_shape`), whatever the region's height:
- a **lattice**: a quarter of the ink or more in dots of a few pixels (DOT_AREA), most of them on
  dotted lines: a row or column (a pixel either way) holding far more dots than the average row,
  their gaps a whole number of one pitch. Noise or small text broken into dots is not so regular;
- a **trace**: one component spanning most of the region's width, holding most of its ink and
  filling little of its box (an ECG or respiratory trace, a solid grid); a **thread**: a line one
  pixel thick in most columns across the region (a trace broken into pieces). Written text is a
  row of separate glyphs, and a line of text on a box fills its box;
- a **ruler**: five or more thin bars all turned the same way, holding most of the ink;
- a **figure**: one stroke component (dots aside), not much wider than tall, filling little of its
  box and enclosing at most two holes (a caliper's "+" or "x", an arrow, a body marker's outline),
  or two such (a pair of crosses). A bracketed letter ("[M]", a PHI sex) fills its box more than
  FIGURE_MAX_FILL; a block of 4 px lines merges into a blob as thin, but holed between its glyphs.
Each is set aside only when the recogniser reads no line in it (`set_aside`: the unread look's test,
under UNREAD_MIN_CONFIDENCE or fewer than UNREAD_MIN_ALNUM letters or digits, or one letter or digit
repeated REPEATED_MIN times or more; a figure at most one letter or digit per component), the region
verifier is not sure of it (under DRAWN_MAX_PROBABILITY; a figure read without any letter or digit,
"+", needs no such doubt), and its ink stands out (DRAWN_MIN_CONTRAST, LATTICE_MIN_CONTRAST): a faint
line of small text breaks into dots and misreads, and must stay.

The shape is judged first (a top-hat and one pass of connected components on the region's crop,
2-4 ms per image); only the regions that look drawn are read and verified. The thresholds were
chosen on the synthetic test seed (1000, 480 images and 33 cines, held-out fonts, half the images
with scanner graphics; the regions gathered once and every point replayed) as points that lost no
PHI line there, and kept short of the point where one did (models/weights/HISTORY.md, looks-10).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from models.looks.unread import UNREAD_MIN_ALNUM, UNREAD_MIN_CONFIDENCE
from models.looks.verdict import text_probabilities
from models.render import as_display, to_gray

if TYPE_CHECKING:
    from models.inference import TextFinder
    from models.regions import TextRegion

#: A region the verifier gives at least this probability of text is never set aside for its shape.
DRAWN_MAX_PROBABILITY = 0.7
#: ... nor one whose ink stands less than this (grey levels, top-hat's 99th percentile) from its ground.
DRAWN_MIN_CONTRAST = 30.0
#: Ink is what the top-hat lifts above this share of its 99th percentile (and at least INK_MIN_LEVEL).
INK_SHARE = 0.4
INK_MIN_LEVEL = 12
#: A component of at most this many pixels is a dot.
DOT_AREA = 4
#: A lattice: at least this share of the ink in dots, and this share of the dots on dotted lines: a
#: row or column holding at least LATTICE_MIN_LINE dots and LATTICE_LINE_RATIO times the average,
LATTICE_DOT_SHARE = 0.25
LATTICE_ALIGNED = 0.7
LATTICE_MIN_LINE = 4
LATTICE_LINE_RATIO = 2.0
#: ... at least this share of the gaps between its dots within a pixel of a multiple of their median.
LATTICE_EVEN = 0.8
#: A lattice's contrast may be lower than DRAWN_MIN_CONTRAST: its dots are blended into the image.
LATTICE_MIN_CONTRAST = 25.0
#: A trace: one component spanning this share of the region's width, holding this share of the ink,
#: filling under TRACE_MAX_FILL of its box.
TRACE_SPAN = 0.7
TRACE_SHARE = 0.7
TRACE_MAX_FILL = 0.25
#: A figure: one component (dots aside) holding this share of the ink, at most this much wider than
#: tall, filling under FIGURE_MAX_FILL of its box.
FIGURE_SHARE = 0.9
FIGURE_MAX_ASPECT = 1.5
FIGURE_MAX_FILL = 0.6
#: ... and enclosing at most this many holes (a body marker's outline and its head: two).
FIGURE_MAX_HOLES = 2
#: A thread: a line one pixel thick in most columns it crosses, across this share of the region's
#: columns (a trace broken into pieces), in a region at least THREAD_MIN_HEIGHT tall.
THREAD_SPAN = 0.7
THREAD_MIN_HEIGHT = 10
#: A reading of one letter or digit repeated at least this often reads as no line ("1111": ticks).
REPEATED_MIN = 6
#: Two figures (a caliper's crosses, dots aside, their dotted line) holding this share of the ink.
FIGURES_SHARE = 0.6
#: A ruler: at least RULER_MIN_TICKS bars at most TICK_MAX_WIDTH thick, all turned the same way,
#: holding RULER_SHARE of the ink.
RULER_MIN_TICKS = 5
TICK_MAX_WIDTH = 3
RULER_SHARE = 0.6


def keep_written(finder: TextFinder, display: np.ndarray, regions: list[TextRegion]) -> list[TextRegion]:
    """``regions`` less those whose ink is drawn (see the module's docstring) and that neither the
    recogniser reads nor the verifier is sure of."""
    if not regions or finder.verifier is None or finder.recognizer is None:
        return regions
    gray = to_gray(as_display(display))
    shapes = {i: shape for i, r in enumerate(regions) if (shape := drawn_shape(gray[r.y0:r.y1, r.x0:r.x1]))}
    if not shapes:
        return regions
    suspects = [regions[i] for i in shapes]
    probabilities = text_probabilities(finder.verifier, display, suspects)
    readings = finder.readings(display, suspects)
    drawn = {i for i, p, reading in zip(shapes, probabilities, readings, strict=True)
             if set_aside(shapes[i], float(p), *reading)}
    return [r for i, r in enumerate(regions) if i not in drawn]


def set_aside(shape: str, probability: float, text: str, confidence: float) -> bool:
    """Whether a region drawn as ``shape`` goes, given the verifier's ``probability`` and the
    recogniser's reading ``text`` at mean ``confidence``."""
    alnum = [c for c in text if c.isalnum()]
    figure = shape in ("figure", "figures")
    # A caliper's "+" read as "+" holds no letter or digit, however much the verifier believes it. The
    # verifier believes dotted grids too (0.9-0.98), but dot-matrix fonts break into aligned dots as well.
    believed = not (figure and not alnum)
    if believed and probability >= DRAWN_MAX_PROBABILITY:
        return False
    repeated = len(alnum) >= REPEATED_MIN and len(set(alnum)) == 1  # "1111": a ruler's ticks
    unread = confidence < UNREAD_MIN_CONFIDENCE or len(alnum) < UNREAD_MIN_ALNUM or repeated
    if figure:
        return unread and len(alnum) <= (2 if shape == "figures" else 1)
    return unread or (shape == "ruler" and len(set(alnum)) == 1)


def ink(gray: np.ndarray) -> tuple[np.ndarray, float]:
    """The region's ink (the polarity whose top-hat is the stronger) and its contrast."""
    k = int(np.clip(min(gray.shape) // 2, 5, 15)) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    lifted = [cv2.morphologyEx(gray, op, kernel) for op in (cv2.MORPH_TOPHAT, cv2.MORPH_BLACKHAT)]
    levels = [float(np.percentile(t, 99)) for t in lifted]
    best = int(np.argmax(levels))
    return lifted[best] > max(INK_MIN_LEVEL, INK_SHARE * levels[best]), levels[best]


def drawn_shape(gray: np.ndarray) -> str | None:
    """How the ink of ``gray`` (a region's crop) is drawn: "lattice", "trace", "ruler", "figure",
    "figures" or "thread" (see the module's docstring); None when it may be written."""
    if min(gray.shape) < 3:
        return None
    mask, contrast = ink(np.ascontiguousarray(gray))
    if contrast < LATTICE_MIN_CONTRAST:
        return None
    count, labels, stats, centres = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    stats, centres = stats[1:count], centres[1:count]
    if not len(stats):
        return None
    area, width, height = stats[:, 4], stats[:, 2], stats[:, 3]
    total = float(area.sum())
    dots = area <= DOT_AREA
    if area[dots].sum() >= LATTICE_DOT_SHARE * total and _aligned(centres[dots], gray.shape) >= LATTICE_ALIGNED:
        return "lattice"
    if contrast < DRAWN_MIN_CONTRAST:
        return None
    big = int(np.argmax(area))
    fill = area / (width * height).astype(float)
    share = area[big] / total
    if width[big] >= TRACE_SPAN * gray.shape[1] and share >= TRACE_SHARE and fill[big] < TRACE_MAX_FILL:
        return "trace"
    strokes = ~dots
    if _ruler(width[strokes], height[strokes], area[strokes], total):
        return "ruler"
    figure = strokes & (fill < FIGURE_MAX_FILL) & (width <= FIGURE_MAX_ASPECT * height)
    if figure.any():  # a block of small lines merges into a blob of the same fill, holed between its glyphs
        figure &= _holes(labels, np.arange(1, count)) <= FIGURE_MAX_HOLES
    if strokes.sum() == 1 and figure[big] and share >= FIGURE_SHARE:
        return "figure"
    if strokes.sum() == 2 and figure.sum() == 2 and area[figure].sum() >= FIGURES_SHARE * total:
        return "figures"
    columns = mask.sum(axis=0)
    if (gray.shape[0] >= THREAD_MIN_HEIGHT and (columns > 0).mean() >= THREAD_SPAN
            and np.median(columns[columns > 0]) <= 1):
        return "thread"
    return None


def _holes(labels: np.ndarray, components: np.ndarray) -> np.ndarray:
    """How many holes each of ``components`` (labels in ``labels``) encloses."""
    out = np.zeros(len(components), int)
    for k, label in enumerate(components):
        _, hierarchy = cv2.findContours((labels == label).astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
        out[k] = 0 if hierarchy is None else int((hierarchy[0][:, 3] >= 0).sum())
    return out


def _ruler(width: np.ndarray, height: np.ndarray, area: np.ndarray, total: float) -> bool:
    """Whether the stroke components (``width``, ``height``, ``area``) are a ruler's ticks: at least
    RULER_MIN_TICKS thin bars all turned the same way, holding RULER_SHARE of the ink. (Components
    of one size were tried too: digits of a monospaced line are so, and it found few more rulers.)"""
    short, long = np.minimum(width, height), np.maximum(width, height)
    bars = (short <= TICK_MAX_WIDTH) & (long >= 2 * short)
    groups = [bars & (width > height), bars & (height > width)]
    return any(g.sum() >= RULER_MIN_TICKS and area[g].sum() >= RULER_SHARE * total for g in groups)


def _aligned(centres: np.ndarray, shape: tuple[int, int]) -> float:
    """Share of the dots at ``centres`` that lie on a dotted line: a row (or column, a pixel either way)
    holding at least LATTICE_MIN_LINE of them and LATTICE_LINE_RATIO times as many as a row holds on
    average (noise broken into dots fills every row alike), evenly spaced: most gaps within a pixel of
    a whole number of the median gap (small text broken into dots is not)."""
    xs, ys = np.floor(centres[:, 0]).astype(int), np.floor(centres[:, 1]).astype(int)
    on_line = np.zeros(len(centres), bool)
    for along, across, length in ((xs, ys, shape[0]), (ys, xs, shape[1])):
        need = max(LATTICE_MIN_LINE, LATTICE_LINE_RATIO * len(centres) / length)
        for band in _bands(across):
            members = (across >= band[0]) & (across <= band[1])
            if members.sum() >= need and _even(along[members]):
                on_line |= members
    return float(on_line.mean())


def _bands(positions: np.ndarray) -> list[tuple[int, int]]:
    """Runs of occupied neighbouring rows (or columns) at most three pixels wide: one dotted line each."""
    occupied = np.unique(positions)
    runs = np.split(occupied, np.flatnonzero(np.diff(occupied) > 1) + 1)
    return [(int(run[0]), int(run[-1])) for run in runs if run[-1] - run[0] <= 2]


def _even(along: np.ndarray) -> bool:
    """Whether dots at ``along`` (positions on their line) are spaced by whole numbers of one pitch."""
    gaps = np.diff(np.unique(along))
    if not len(gaps):
        return False
    pitch = max(1.0, float(np.median(gaps)))
    steps = np.maximum(1, np.rint(gaps / pitch))  # a dot missing where a line crosses: two steps
    return bool(np.mean(np.abs(gaps - steps * pitch) <= 1) >= LATTICE_EVEN)
