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
  A thicker trace (the top-hat widens a 2 px line) fills more, but crosses nearly every column once
  and rises and falls (`_one_line`): glyphs, even joined, cross most columns twice;
- a **ruler**: five or more thin bars all turned the same way, holding most of the ink, or five or
  more blocks of one size on one line, evenly spaced (ticks the top-hat thickened, `_blocks`);
- a **figure**: one stroke component (dots aside), not much wider than tall, filling little of its
  box and enclosing at most two holes (a caliper's "+" or "x", an arrow, a body marker's outline),
  or two such (a pair of crosses). A bracketed letter ("[M]", a PHI sex) fills its box more than
  FIGURE_MAX_FILL; a block of 4 px lines merges into a blob as thin, but holed between its glyphs.
  A caliper's thin "x" can lift the ground between its arms as much as the arms: the stronger
  polarity is then a block cut by the cross, and the weaker one, at a tie, is the ink (`_crossed`);
- a **marker**: a body marker's thin outline enclosing a hole, and inside its box the probe's bar
  (one or two elongated components, `_marker`).
Each is set aside only when the recogniser reads no line in it (`set_aside`: the unread look's test,
under UNREAD_MIN_CONFIDENCE or fewer than UNREAD_MIN_ALNUM letters or digits, or one letter or digit
repeated REPEATED_MIN times or more; a figure or marker at most one letter or digit per component), the region
verifier is not sure of it (under DRAWN_MAX_PROBABILITY; a figure read without any letter or digit,
"+", needs no such doubt), and its ink stands out (DRAWN_MIN_CONTRAST, LATTICE_MIN_CONTRAST): a faint
line of small text breaks into dots and misreads, and must stay.

The shape is judged first (a top-hat and one pass of connected components on the region's crop,
2-4 ms per image); only the regions that look drawn are read and verified. The thresholds were
chosen on the synthetic test seed (1000, 480 images and 33 cines, held-out fonts, half the images
with scanner graphics; the regions gathered once and every point replayed) as points that lost no
PHI line there, and kept short of the point where one did (models/weights/HISTORY.md, looks-10).
The cross, marker, block and thicker-trace tests came after (looks-11): shapes seen among the regions
looks-10 still changed, each checked against every region on a PHI line of four seeds (HISTORY.md).
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
#: Polarities whose top-hats reach within this share of each other's level are a tie (see `_crossed`).
POLARITY_TIE = 0.9
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
#: ... or, a thicker trace, crossing TRACE_ONE_RUN of its columns once, at most TRACE_MAX_THICKNESS
#: thick in most of them (a line of glyphs, even joined, crosses most columns twice or more).
TRACE_ONE_RUN = 0.9
TRACE_MAX_THICKNESS = 4
TRACE_MAX_EDGE = 0.5
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
#: A cross: one component that a quarter turn leaves in place (IoU at least CROSS_SYMMETRY), enclosing
#: no hole wider than a dot, filling under CROSS_MAX_FILL of its box (a solid square or disc does not).
CROSS_SYMMETRY = 0.6
CROSS_MAX_FILL = 0.8
#: A marker: a thin outline enclosing a hole, and inside its box at most MARKER_MAX_BARS bars (the
#: probe's), each at least BAR_ELONGATION times as long as thick.
MARKER_MAX_BARS = 2
BAR_ELONGATION = 2.0
#: A ruler of blocks: at least RULER_MIN_TICKS components of one size, one above the other (or side by
#: side) on one line, evenly spaced, holding BLOCKS_SHARE of the ink.
BLOCKS_SHARE = 0.85


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
    figure = shape in ("figure", "figures", "marker")
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
    masks, levels = _polarities(gray)
    best = int(np.argmax(levels))
    return masks[best], levels[best]


def _polarities(gray: np.ndarray) -> tuple[list[np.ndarray], list[float]]:
    """The bright and the dark ink of ``gray`` (top-hat, black-hat) and the level each reaches."""
    k = int(np.clip(min(gray.shape) // 2, 5, 15)) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    lifted = [cv2.morphologyEx(gray, op, kernel) for op in (cv2.MORPH_TOPHAT, cv2.MORPH_BLACKHAT)]
    levels = [float(np.percentile(t, 99)) for t in lifted]
    return [t > max(INK_MIN_LEVEL, INK_SHARE * level) for t, level in zip(lifted, levels, strict=True)], levels


def _crossed(masks: list[np.ndarray], levels: list[float]) -> bool:
    """A caliper's "x" or "+" of thin bright strokes close together lifts the dark ground between its
    arms as much as the arms: the stronger polarity is then that ground, a block the cross cuts into
    pieces. When the weaker polarity (of ``masks``, at ``levels``) reaches nearly the same level
    (POLARITY_TIE) and covers less, it is the ink: whether it is one cross (`_cross`), dots aside."""
    best = int(np.argmax(levels))
    weak = masks[1 - best]
    if levels[1 - best] < POLARITY_TIE * levels[best] or weak.sum() >= masks[best].sum():
        return False
    count, labels, stats, _ = cv2.connectedComponentsWithStats(weak.astype(np.uint8), connectivity=8)
    stats = stats[1:count]
    strokes = np.flatnonzero(stats[:, 4] > DOT_AREA)
    if len(strokes) != 1 or stats[strokes[0], 4] < FIGURE_SHARE * stats[:, 4].sum():
        return False
    return _cross(labels == strokes[0] + 1, stats[strokes[0]])


def drawn_shape(gray: np.ndarray) -> str | None:
    """How the ink of ``gray`` (a region's crop) is drawn: "lattice", "trace", "ruler", "figure",
    "figures", "thread" or "marker" (see the module's docstring); None when it may be written."""
    if min(gray.shape) < 3:
        return None
    masks, levels = _polarities(np.ascontiguousarray(gray))
    mask, contrast = masks[int(np.argmax(levels))], max(levels)
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
    spans = width[big] >= TRACE_SPAN * gray.shape[1] and share >= TRACE_SHARE
    if spans and fill[big] < TRACE_MAX_FILL:
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
    # looks-11: tried only where looks-10 saw nothing drawn, so that no shape it named changes
    if spans and _one_line(labels == big + 1):
        return "trace"
    if _blocks(stats[strokes], centres[strokes], total):
        return "ruler"
    if _marker(labels, stats, strokes, big, fill, total):
        return "marker"
    return "figure" if _crossed(masks, levels) else None


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


def _filled_holes(component: np.ndarray) -> tuple[np.ndarray, int]:
    """``component`` (a boolean crop) with its pinholes (at most DOT_AREA pixels) filled, and how many
    larger holes it encloses."""
    padded = np.pad(component, 1).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(1 - padded, connectivity=4)
    out, big = padded.astype(bool), 0
    for k in range(1, count):
        if labels[0, 0] == k:
            continue
        if stats[k, 4] <= DOT_AREA:
            out |= labels == k
        else:
            big += 1
    return out[1:-1, 1:-1], big


def _cross(mask: np.ndarray, stat: np.ndarray) -> bool:
    """Whether the component ``mask`` (its ``stat`` row) is a cross, "+" or "x": a quarter turn
    leaves it in place, and it encloses no real hole (an "O" does)."""
    x, y, w, h = (int(v) for v in stat[:4])
    if abs(w - h) > max(2, 0.2 * max(w, h)) or min(w, h) < 5:
        return False
    solid, holes = _filled_holes(mask[y:y + h, x:x + w])
    if holes or solid.mean() >= CROSS_MAX_FILL:
        return False
    side = max(w, h)
    square = np.zeros((side, side), bool)
    square[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = solid
    turned = np.rot90(square)
    return float((square & turned).sum() / (square | turned).sum()) >= CROSS_SYMMETRY


def _marker(labels, stats, strokes, big, fill, total) -> bool:
    """A body marker: the largest component a thin outline enclosing a hole, and every other stroke
    (at most MARKER_MAX_BARS) a bar inside its box: the probe. A letter in a box is not a bar."""
    others = [k for k in np.flatnonzero(strokes) if k != big]
    if not 1 <= len(others) <= MARKER_MAX_BARS or fill[big] >= FIGURE_MAX_FILL:
        return False
    x, y, w, h = (int(v) for v in stats[big, :4])
    if max(w, h) > 2 * min(w, h):
        return False
    for k in others:
        ox, oy, ow, oh = (int(v) for v in stats[k, :4])
        if ox < x or oy < y or ox + ow > x + w or oy + oh > y + h:
            return False
        (_, _), (a, b), _ = cv2.minAreaRect(np.argwhere(labels == k + 1).astype(np.float32))
        if max(a, b) + 1 < BAR_ELONGATION * (min(a, b) + 1):
            return False
    if (stats[[big, *others], 4].sum()) < FIGURES_SHARE * total:
        return False
    _, holes = _filled_holes(labels[y:y + h, x:x + w] == big + 1)
    return holes >= 1


def _blocks(stats: np.ndarray, centres: np.ndarray, total: float) -> bool:
    """Ticks thickened into blocks: at least RULER_MIN_TICKS components of one size on one line
    (centres within a pixel across it), evenly spaced along it, holding BLOCKS_SHARE of the ink."""
    if len(stats) < RULER_MIN_TICKS:
        return False
    sizes = {}
    for k, (w, h, a) in enumerate(stats[:, 2:5]):
        sizes.setdefault((int(w), int(h), int(a)), []).append(k)
    for members in sizes.values():
        if len(members) < RULER_MIN_TICKS or stats[members, 4].sum() < BLOCKS_SHARE * total:
            continue
        c = centres[members]
        for across, along in ((c[:, 0], c[:, 1]), (c[:, 1], c[:, 0])):
            if np.ptp(across) <= 1 and _even(np.rint(along).astype(int)):
                return True
    return False


def _one_line(component: np.ndarray) -> bool:
    """Whether ``component`` (a boolean mask of the region) is one line across: one run of ink in
    TRACE_ONE_RUN of the columns it occupies, at most TRACE_MAX_THICKNESS thick in most of them,
    rising and falling over at least twice that thickness, and touching the region's top or bottom
    row in under TRACE_MAX_EDGE of them."""
    cols = component[:, component.any(axis=0)].astype(np.int8)
    starts = (np.diff(cols, axis=0, prepend=0) == 1).sum(axis=0)
    thickness = cols.sum(axis=0)
    line = float(np.median(thickness))
    # It rises and falls (a straight bar, a banner's edge above a line of text, does not), and it lies
    # inside the region: the edge of a bright blob the region cuts off runs along its top or bottom.
    edge = (cols[0] | cols[-1]).mean()
    return bool((starts == 1).mean() >= TRACE_ONE_RUN and line <= TRACE_MAX_THICKNESS
                and component.any(axis=1).sum() >= 2 * line and edge < TRACE_MAX_EDGE)
