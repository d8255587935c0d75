"""Which detected text is redacted.

``redact_all`` (the default) redacts every detected region: nothing has to be read, and a
misread cannot let PHI through. ``keep_safe`` reads each detected region and keeps it only when
``models.phi.classify`` puts its text in one of the configured safe classes (e.g. "safe" for
"LYMPH NODE", orientation markers, scale labels) and the recogniser is sure of its reading: a
date read at low confidence as "P" or "273" would otherwise pass for a marker or a number.
Known-region boxes are always redacted.

Recognized text is used for the decision and then dropped: it never reaches a report or a log.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from gateway.pixels.finders import Region, TextFinderLike
from gateway.pixels.regions import Box


def display_region(box: Box, scale: float = 1.0) -> Region:
    return Region(int(box.x0 * scale), int(box.y0 * scale), int(np.ceil(box.x1 * scale)),
                  int(np.ceil(box.y1 * scale)), 1.0)


def keeps(reading: tuple[str, float], classify: Callable[[str], str], keep_classes: Sequence[str],
          min_confidence: float) -> bool:
    """Whether one read region may stay. An empty or uncertain reading is no evidence of safety."""
    text, confidence = reading
    return bool(text.strip()) and confidence >= min_confidence and classify(text) in keep_classes


def split(
    boxes: Sequence[Box],
    policy: str,
    keep_classes: Sequence[str],
    finder: TextFinderLike,
    display_of: Callable[[int], np.ndarray],
    classify: Callable[[str], str],
    min_confidence: float,
) -> tuple[list[Box], list[Box]]:
    """Return (redact, keep). ``display_of(frame)`` renders a frame at stored resolution."""
    if policy == "redact_all":
        return list(boxes), []
    redact, keep = [], []
    candidates = [b for b in boxes if b.source != "known"]
    redact.extend(b for b in boxes if b.source == "known")
    by_frame: dict[int, list[Box]] = {}
    for b in candidates:
        by_frame.setdefault(b.frame if b.frame is not None else 0, []).append(b)
    for frame, group in by_frame.items():
        image = display_of(frame)
        readings = finder.readings(image, [display_region(b) for b in group])
        for b, reading in zip(group, readings, strict=True):
            (keep if keeps(reading, classify, keep_classes, min_confidence) else redact).append(b)
    return redact, keep
