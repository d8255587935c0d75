"""Which detected text is redacted.

``redact_all`` (the default) redacts every detected region, so a misread cannot let PHI through;
the regions are still read, to give the audit a category per region (``pixels.audit_categories``).
``keep_safe`` keeps a region only when ``models.phi.classify`` puts its reading in one of the
configured safe classes (e.g. "safe" for "LYMPH NODE", orientation markers, scale labels) and the
recogniser is sure of that reading, of text large enough to read: a date read at low confidence as
"P" or "273", or a 5 px "[M]" read as "P", would otherwise pass for a marker or a number.
Known-region boxes are always redacted.

Recognized text is used for the category and then dropped: it never reaches a report or a log.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from gateway.pixels.config import PixelsConfig
from gateway.pixels.finders import TextFinderLike
from gateway.pixels.regions import Box
from models.phi import may_keep, short_side
from models.regions import TextRegion

#: A classifier of one reading: its text in, its category ("name", "date", "safe"...) out.
Classify = Callable[[str], str]

#: Categories of regions that were not read: device rules' boxes, and regions the recogniser
#: read nothing in. Neither is ever kept, whatever ``keep_classes`` says.
KNOWN_REGION = "known-region"
UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Judged:
    """What a region's reading says about it, without the text: its category and how sure the
    recogniser was of the reading it was classified from."""

    category: str
    confidence: float
    #: The region's short side in display pixels: small text is misread even with confidence.
    size: int


def display_region(box: Box, scale: float = 1.0) -> TextRegion:
    return TextRegion(int(box.x0 * scale), int(box.y0 * scale), int(np.ceil(box.x1 * scale)),
                      int(np.ceil(box.y1 * scale)), 1.0)


def judge(reading: tuple[str, float], classify: Classify, region) -> Judged:
    """``region`` is the box read (anything with x0, y0, x1, y1)."""
    text, confidence = reading
    return Judged(classify(text) if text.strip() else UNREADABLE, confidence, short_side(region))


def judge_regions(boxes: Sequence[Box], finder: TextFinderLike, display_of: Callable[[int], np.ndarray],
                  classify: Classify) -> list[Judged]:
    """Each box read and classified, frame by frame; the text is dropped here. ``display_of(frame)``
    renders a frame at stored resolution."""
    judged: list[Judged | None] = [Judged(KNOWN_REGION, 0.0, 0) if b.source == "known" else None for b in boxes]
    by_frame: dict[int, list[int]] = {}
    for i, b in enumerate(boxes):
        if judged[i] is None:
            by_frame.setdefault(b.frame if b.frame is not None else 0, []).append(i)
    for frame, indices in by_frame.items():
        readings = finder.readings(display_of(frame), [display_region(boxes[i]) for i in indices])
        for i, reading in zip(indices, readings, strict=True):
            judged[i] = judge(reading, classify, boxes[i])
    return [j for j in judged if j is not None]


def keeps(judged: Judged, keep_classes: Sequence[str], min_confidence: float, min_size: int) -> bool:
    """Whether one region may stay under keep_safe. An empty or uncertain reading, or one of text
    too small to read reliably, is no evidence of safety, and a device rule's box always goes."""
    return judged.category not in (KNOWN_REGION, UNREADABLE) and may_keep(
        judged.category, judged.confidence, judged.size, keep_classes, min_confidence, min_size)


def split(boxes: Sequence[Box], judged: Sequence[Judged], keep_classes: Sequence[str],
          min_confidence: float, min_size: int) -> tuple[list[Box], list[Box]]:
    """Return (redact, keep) under keep_safe."""
    redact, keep = [], []
    for box, j in zip(boxes, judged, strict=True):
        (keep if keeps(j, keep_classes, min_confidence, min_size) else redact).append(box)
    return redact, keep


@dataclass
class Decision:
    """What the policy made of one instance's regions: which go, which stay, and the category each
    was read as (where it was read; a device rule's box needs none, its source says "known")."""

    redact: list[Box]
    kept: list[Box] = field(default_factory=list)
    judged: list[Judged] = field(default_factory=list)
    category: dict[Box, str] = field(default_factory=dict)

    def reported(self, regions: Sequence[Box]) -> list[dict]:
        """Coordinates, provenance and the category; never the text."""
        return [{**b.as_report(), "category": self.category[b]} if b in self.category else b.as_report()
                for b in regions]


def decide(boxes: Sequence[Box], judged: Sequence[Judged] | None, config: PixelsConfig) -> Decision:
    """The configured policy applied to ``boxes``; ``judged`` (None where they were not read) goes
    with them one for one."""
    if config.policy == "keep_safe" and judged:
        redact, kept = split(boxes, judged, config.keep_classes, config.keep_min_confidence,
                             config.keep_min_region_px)
    else:
        redact, kept = list(boxes), []
    if not judged:
        return Decision(redact, kept)
    category = {b: j.category for b, j in zip(boxes, judged, strict=True) if b.source != "known"}
    return Decision(redact, kept, list(judged), category)


def still_safe(finder: TextFinderLike, display: Callable[[int], np.ndarray], classify: Classify,
               config: PixelsConfig, frame: int, found: list[Box]) -> list[bool]:
    """Whether each of ``found`` — text that verification detects on kept text, in ``display(frame)``
    as restored — still reads as text the policy keeps (a restoration beside it may have changed
    what is read there)."""
    readings = finder.readings(display(frame), [display_region(b) for b in found])
    return [keeps(judge(r, classify, b), config.keep_classes, config.keep_min_confidence, config.keep_min_region_px)
            for r, b in zip(readings, found, strict=True)]
