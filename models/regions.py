"""Regions: the boxes the finder redacts, audits and hands to the recogniser.

Every look of `models.inference.TextFinder` yields raw boxes (x0, y0, x1, y1, score) at original
resolution; this module turns them into `TextRegion`s (the safety margin, the reach past a line's
ends), folds the repeats of one line into one region, and closes the gaps of a block. Pure NumPy,
so it is shared by the finder, the verifier's training and the tests without loading a network.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from models.metrics import area, coverage, union_mask
from models.postprocess import SAFETY_MARGIN

#: Each region also reaches this share of its line's height past the line's two ends (looks-4).
#: The last letters of a line that runs from a bright background onto a dark one fade from the
#: detector's view before they fade from a reader's: on a public MR file two digits of an ID
#: were left readable beside its box. The validation set gains one PHI line at 0.25 and three at
#: 0.5. The verifier judges the line without this reach (``line_box``): shown the longer boxes,
#: it let regions stand on three of the 37 public no-text files.
LINE_END_MARGIN = 0.5
#: Regions overlapping by at least this share of the smaller one's area become one region, the
#: box around both (looks-4). The coarse and second looks see again lines the first pass found,
#: and two words of a line each lengthened over their faint ends reach into one another: nearly a
#: third of all regions found on the synthetic test set were such repeats. One region per line keeps
#: the audit's region counts true, and a box around both never uncovers what either covered.
MERGE_OVERLAP = 0.5
#: A gap between two lines of a block with room for a line, LINE_GAP_MIN to LINE_GAP_MAX of their
#: text height, is covered too (``line_gaps``; looks-5). Header blocks stack name, age and birth
#: date; when one line is white on white lung or a few faint pixels, its neighbours are still
#: found. On a public chest radiograph "Age: 37" stood unboxed between "Name" and "DOB" (a gap of
#: 0.42 of their boxes' height), and on the synthetic test set a 6 px "8 yrs" (0.9). Lines at their
#: usual spacing stand under a fifth of their height apart.
LINE_GAP_MIN = 0.3
LINE_GAP_MAX = 1.6


@dataclass(frozen=True)
class TextRegion:
    """A text line's box in original pixel coordinates (x1/y1 exclusive) and detector confidence."""

    x0: int
    y0: int
    x1: int
    y1: int
    score: float

    @property
    def box(self) -> tuple[int, int, int, int]:
        return (self.x0, self.y0, self.x1, self.y1)


def not_yet_found(boxes: list, found: list, shape: tuple[int, int], covered: float = 0.7) -> list:
    """``boxes`` (x0, y0, x1, y1, score) less those already mostly inside ``found``: the colour,
    vertical and rotated looks see again much of the text the first pass found, and one region per line keeps
    the audit's region counts true."""
    if not boxes or not found:
        return boxes
    mask = union_mask([(x0, y0, np.ceil(x1), np.ceil(y1)) for x0, y0, x1, y1, _ in found], *shape)
    return [box for box in boxes if coverage(box[:4], mask) < covered]


def to_region(box, shape: tuple[int, int]) -> TextRegion | None:
    """(x0, y0, x1, y1, score) in original pixels -> the region redacted: grown by the safety
    margin and clipped to the image (None when nothing of it is left)."""
    x0, y0, x1, y1, score = box
    h, w = shape
    m = SAFETY_MARGIN
    x0, y0 = max(0, int(np.floor(x0)) - m), max(0, int(np.floor(y0)) - m)
    x1, y1 = min(w, int(np.ceil(x1)) + m), min(h, int(np.ceil(y1)) + m)
    if x1 <= x0 or y1 <= y0:
        return None
    end = _line_end(x1 - x0, y1 - y0)
    if x1 - x0 >= y1 - y0:
        x0, x1 = max(0, x0 - end), min(w, x1 + end)
    else:
        y0, y1 = max(0, y0 - end), min(h, y1 + end)
    return TextRegion(x0, y0, x1, y1, score=round(score, 4))


def _line_end(width: int, height: int) -> int:
    """How far a region of this size (safety margin included) reaches past its line's ends."""
    return int(round(LINE_END_MARGIN * max(0, min(width, height) - 2 * SAFETY_MARGIN)))


def line_box(region: TextRegion) -> tuple[int, int, int, int]:
    """``region``'s box without its reach past the line's ends (LINE_END_MARGIN): the verifier
    judges a region as it was trained to, and longer boxes sway it."""
    w, h = region.x1 - region.x0, region.y1 - region.y0
    end = _line_end(w, h)
    if w >= h:
        return region.x0 + end, region.y0, max(region.x0 + end + 1, region.x1 - end), region.y1
    return region.x0, region.y0 + end, region.x1, max(region.y0 + end + 1, region.y1 - end)


def merged(regions: list[TextRegion]) -> list[TextRegion]:
    """``regions`` with each group of overlapping ones (see MERGE_OVERLAP) replaced by the box
    around the group, scored by its best member.

    Largest first, each region is compared with every box kept so far in one vectorised step, and
    takes in the first it overlaps until it overlaps none: a grown region may now overlap one it
    passed by. A screenshot's hundreds of regions then cost milliseconds, not a second."""
    boxes = np.zeros((len(regions), 4), np.int64)  # every region adds one box, grown or not
    scores: list[float] = []
    kept = np.zeros(len(regions), bool)
    for n, region in enumerate(sorted(regions, key=lambda r: area(r.box), reverse=True)):
        box, score = np.array(region.box, np.int64), region.score
        while n:
            others = boxes[:n]
            across = np.clip(np.minimum(others[:, 2], box[2]) - np.maximum(others[:, 0], box[0]), 0, None)
            down = np.clip(np.minimum(others[:, 3], box[3]) - np.maximum(others[:, 1], box[1]), 0, None)
            sizes = np.clip(others[:, 2] - others[:, 0], 0, None) * np.clip(others[:, 3] - others[:, 1], 0, None)
            overlapping = kept[:n] & (across * down >= MERGE_OVERLAP * np.minimum(sizes, area(tuple(box))))
            if not overlapping.any():
                break
            k = int(np.argmax(overlapping))
            kept[k] = False
            box = np.concatenate([np.minimum(box[:2], others[k, :2]), np.maximum(box[2:], others[k, 2:])])
            score = max(score, scores[k])
        boxes[n], kept[n] = box, True
        scores.append(score)
    return [TextRegion(*(int(v) for v in boxes[i]), scores[i]) for i in np.flatnonzero(kept)]


def line_gaps(regions: list[TextRegion]) -> list[TextRegion]:
    """``regions`` with each horizontal one reaching down to the next line of its block when the gap
    between them has room for a line (LINE_GAP_MIN to LINE_GAP_MAX of the text height): the next
    line below it, overlapping it by half the narrower in x, of like height, with nothing found
    between them. One vectorised pass per line: a screenshot can hold hundreds."""
    if LINE_GAP_MAX <= 0 or not regions:
        return regions
    x0, y0, x1, y1 = np.array([r.box for r in regions]).T
    width, text_height = x1 - x0, y1 - y0 - 2 * SAFETY_MARGIN
    line = width >= 2 * (y1 - y0)
    out = list(regions)
    for i in np.flatnonzero(line):
        under = line & (y0 >= y1[i]) & (np.minimum(x1, x1[i]) - np.maximum(x0, x0[i]) >= 0.5 * np.minimum(width, width[i]))
        if not under.any():
            continue
        j = np.flatnonzero(under)[np.argmin(y0[under])]
        smaller, larger = sorted((text_height[i], text_height[j]))
        gap = y0[j] - y1[i]
        if not (LINE_GAP_MIN * smaller <= gap <= LINE_GAP_MAX * smaller and smaller >= 0.6 * larger):
            continue
        between = (x0 < x1[i]) & (x1 > x0[i]) & (y0 < y0[j]) & (y1 > y1[i])
        between[[i, j]] = False
        if not between.any():
            out[i] = replace(regions[i], y1=int(y0[j]))
    return out
