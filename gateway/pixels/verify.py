"""Checking the restored image the way an attacker would: look for text again.

After restoration the detector runs on the whole restored frame and on every restored part
(a crop around it, where small leftovers stand out). Anything found in a restored part, or any
text the whole-frame check finds that the policy did not decide to keep, is a failure. What a
crop check finds outside the restored part is not: those pixels are the ones the whole-frame
check (and the detection before it) judged at the frame's own scale, and a small crop is seen
magnified, where textures next to a filled box start to look like text.

What is found is then judged by what it shows, not by the detector alone (when the finder can
read): a detection on a solid fill or its border is the fill's edge, unless text stands beside it
once that edge is smoothed away; and any other detection is text left behind only if the
recogniser reads letters or digits in it (READ_MIN_ALNUM at READ_MIN_CONFIDENCE). A restoration's
smear, a ruler's ticks or a tiled image's seams read as nothing: they are not filled, and never
hold an instance back.

:class:`FillVerifier` then solid-fills the failing parts (the fill backend cannot leave text) and
checks again, a few rounds at most; an instance that still shows readable text, or that the fills
would leave mostly blank, is quarantined by the stage, with the check that kept it back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from gateway.pixels.detect import FrameDetector
from gateway.pixels.inpaint.base import RestoreContext
from gateway.pixels.inpaint.fill import FillInpainter
from gateway.pixels.mask import frame_mask, mask_parts
from gateway.pixels.regions import Box
from models.regions import TextRegion

# Context added around each restored part for the crop check.
CROP_CONTEXT = 16
#: A detection within this many pixels of a solid fill lies on its border.
FILL_BORDER = 3
#: What the recogniser must read in a detection for it to be text left behind: this many letters or
#: digits, at this mean confidence. Lenient on purpose (a leftover fragment of a date is filled):
#: the smears, ticks and seams verification used to fill read as nothing or as one stray symbol.
READ_MIN_ALNUM = 2
READ_MIN_CONFIDENCE = 0.4
#: A frame that verification would leave more than this share solid-filled is quarantined: it
#: holds no text, but it holds little image either, and a person should decide.
MAX_FILLED_SHARE = 0.5

#: The quarantine reasons of an instance that fails verification, by the check that kept it back.
STILL_TEXT = "burned-in text still read after restoration and solid fill"
STILL_TEXT_CHECKS = {
    "restored": "burned-in text still read in a restored region after solid fill",
    "beside_fill": "burned-in text still read beside a solid fill",
    "elsewhere": "burned-in text read outside the redacted regions after solid fill",
    "kept": "kept text no longer reads as safe after solid fill",
}
MOSTLY_FILLED = "verification would leave most of a frame solid-filled"

#: ``still_safe(frame, found)``: whether each of ``found`` (detected on kept text) may stay.
StillSafe = Callable[[int, list[Box]], list[bool]]
#: ``readable(display, found)``: whether each of ``found`` reads as text in ``display``.
Readable = Callable[[np.ndarray, list[Box]], list[bool]]


@dataclass
class FrameCheck:
    frame: int
    failures: list[Box] = field(default_factory=list)
    #: The check each failure failed ("restored", "beside_fill", "elsewhere", "kept").
    checks: list[str] = field(default_factory=list)
    #: Detections set aside because they read as nothing.
    unread: int = 0


def reader(finder) -> Readable | None:
    """``readable`` for ``finder``, or None when it cannot read (a stand-in without a recogniser):
    then the detector alone decides, as it always did."""
    can_read = getattr(finder, "reads_text", None)
    if can_read is None:
        can_read = getattr(finder, "recognizer", None) is not None
    if not can_read:
        return None

    def readable(display: np.ndarray, found: list[Box]) -> list[bool]:
        regions = [TextRegion(b.x0, b.y0, b.x1, b.y1, 1.0) for b in found]
        return [conf >= READ_MIN_CONFIDENCE and sum(c.isalnum() for c in text) >= READ_MIN_ALNUM
                for text, conf in finder.readings(display, regions)]

    return readable


def check_frame(
    detector: FrameDetector,
    display: np.ndarray,
    frame: int,
    mask: np.ndarray,
    kept: Sequence[Box],
    still_safe: StillSafe | None = None,
    filled: np.ndarray | None = None,
    readable: Readable | None = None,
) -> FrameCheck:
    """Detect on the whole restored display and on each restored part.

    ``mask`` marks every restored pixel, ``filled`` those of them that were solid-filled;
    ``kept`` are the boxes the policy chose to keep (never failures unless in a restored part);
    ``still_safe`` re-reads and re-classifies detections that fall on kept text (keep_safe);
    ``readable`` says whether detections read as text (None: every detection does).
    """
    rows, cols = mask.shape
    inpainted = mask if filled is None else mask & ~filled
    border = mask if filled is None else mask | cv2.dilate(filled.astype(np.uint8), np.ones((3, 3), np.uint8),
                                                           iterations=FILL_BORDER).astype(bool)
    parts = [p.pad(CROP_CONTEXT, rows, cols) for p in mask_parts(mask)]
    found = detector.detect_image(display, frame, source="verify")
    found += [b for b in detector.detect_crops(display, parts, frame, source="verify")
              if mask[b.y0:b.y1, b.x0:b.x1].any()]
    candidates: list[tuple[Box, str]] = []
    on_kept = []
    for b in found:
        if inpainted[b.y0:b.y1, b.x0:b.x1].any():
            candidates.append((b, "restored"))
        elif border[b.y0:b.y1, b.x0:b.x1].any():
            if _text_beside_fill(detector, display, b, mask, frame, readable):
                candidates.append((b, "beside_fill"))
        elif any(b.intersects(k) and k.applies_to(frame) for k in kept):
            on_kept.append(b)
        else:
            candidates.append((b, "elsewhere"))
    check = FrameCheck(frame)
    reads = readable(display, [b for b, _ in candidates]) if readable is not None and candidates else None
    for k, (b, why) in enumerate(candidates):
        if reads is not None and why != "beside_fill" and not reads[k]:
            check.unread += 1
            continue
        check.failures.append(b)
        check.checks.append(why)
    if on_kept and still_safe is not None:
        for b, ok in zip(on_kept, still_safe(frame, on_kept), strict=True):
            if not ok:
                check.failures.append(b)
                check.checks.append("kept")
    return check


def _text_beside_fill(detector: FrameDetector, display: np.ndarray, box: Box, restored: np.ndarray, frame: int,
                      readable: Readable | None = None) -> bool:
    """Whether text is found in ``box`` outside the restored pixels once the fill's edge is gone
    (and, with ``readable``, reads as text there)."""
    rows, cols = restored.shape
    crop = box.pad(CROP_CONTEXT, rows, cols)
    view = np.ascontiguousarray(display[crop.y0:crop.y1, crop.x0:crop.x1])
    holes = restored[crop.y0:crop.y1, crop.x0:crop.x1]
    if holes.all():
        return False
    smooth = cv2.inpaint(view, holes.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    local = Box(box.x0 - crop.x0, box.y0 - crop.y0, box.x1 - crop.x0, box.y1 - crop.y0)
    beside = [b for b in detector.detect_image(smooth, frame, source="verify")
              if b.intersects(local) and (~holes[b.y0:b.y1, b.x0:b.x1]).any()]
    if not beside or readable is None:
        return bool(beside)
    return any(readable(smooth, beside))


@dataclass
class Verification:
    """What verifying one restored instance came to: ``outcome`` is the report's "verification"
    ("passed", "passed after fill fallback", "failed", or "not run"), ``failure`` the quarantine
    reason when it failed; ``fallbacks`` are the boxes solid-filled on the way (reported either way)."""

    outcome: str = "passed"
    fallbacks: list[Box] = field(default_factory=list)
    failure: str | None = None
    #: The check that kept a failed instance back ("restored", "beside_fill", "elsewhere", "kept",
    #: "mostly_filled"); None when it passed.
    check: str | None = None
    #: Detections on the restored frames set aside because they read as nothing.
    unread: int = 0


@dataclass
class FillVerifier:
    """Verification of one restored instance, with the solid-fill fallback.

    Each distinct restored frame is checked (:func:`check_frame`); the parts of a frame that still
    show text are solid-filled, in every frame identical to it too, and all is checked again:
    ``rounds`` fills at most. ``display(k)`` renders frame ``k`` of the restored frames as they
    are at that moment (each fill changes them).
    """

    detector: FrameDetector
    display: Callable[[int], np.ndarray]
    kept: Sequence[Box]
    still_safe: StillSafe | None
    rounds: int
    dilate: int
    rctx: RestoreContext
    readable: Readable | None = None
    fill: FillInpainter = field(default_factory=FillInpainter)

    def __call__(self, frames: np.ndarray, touched: dict[int, np.ndarray]) -> Verification:
        """Check, fill, check again. ``frames`` and ``touched`` (each restored frame's mask of
        restored pixels) are updated in place with every fill."""
        result = Verification()
        filled: dict[int, np.ndarray] = {}
        for attempt in range(self.rounds + 1):
            failing = self._failing(frames, touched, filled, result)
            if not failing:
                break
            if attempt == self.rounds:
                checks = [why for k in failing for why in failing[k].checks]
                result.check = max(set(checks), key=checks.count) if checks else "restored"
                result.outcome, result.failure = "failed", STILL_TEXT_CHECKS.get(result.check, STILL_TEXT)
                return result
            result.outcome = "passed after fill fallback"
            result.fallbacks += self._fill(frames, touched, filled, {k: c.failures for k, c in failing.items()})
        if any(m.mean() > MAX_FILLED_SHARE for m in filled.values()):
            result.outcome, result.failure, result.check = "failed", MOSTLY_FILLED, "mostly_filled"
        return result

    def _failing(self, frames: np.ndarray, touched: dict[int, np.ndarray],
                 filled: dict[int, np.ndarray], result: Verification) -> dict[int, FrameCheck]:
        """Each distinct restored frame that still shows text, with what shows it."""
        rows, cols = frames.shape[1:3]
        failing: dict[int, FrameCheck] = {}
        for k in _frames_to_verify(frames, touched):
            check = check_frame(self.detector, self.display(k), k, touched.get(k, np.zeros((rows, cols), bool)),
                                self.kept, self.still_safe, filled.get(k), self.readable)
            result.unread += check.unread
            if check.failures:
                failing[k] = check
        return failing

    def _fill(self, frames: np.ndarray, touched: dict[int, np.ndarray], filled: dict[int, np.ndarray],
              failing: dict[int, list[Box]]) -> list[Box]:
        """Solid-fill what fails in each failing frame and in the frames identical to it (verified
        once, fixed together); returns the failures as the boxes filled."""
        rows, cols = frames.shape[1:3]
        fallbacks: list[Box] = []
        for k, found in failing.items():
            fill_mask = _fallback_mask(found, touched.get(k), rows, cols, self.dilate)
            for k2 in _same_frames(frames, k, touched):
                frames[k2] = self.fill.restore(frames[k2], fill_mask, self.rctx)
                touched[k2] = touched.get(k2, np.zeros_like(fill_mask)) | fill_mask
                filled[k2] = filled.get(k2, np.zeros_like(fill_mask)) | fill_mask
            fallbacks.extend(Box(b.x0, b.y0, b.x1, b.y1, k, "verify") for b in found)
        return fallbacks


def _frames_to_verify(frames: np.ndarray, touched: dict[int, np.ndarray]) -> list[int]:
    """Changed frames, each distinct restored frame once."""
    seen: set[bytes] = set()
    out = []
    for k in sorted(touched):
        digest = hashlib.blake2b(frames[k].tobytes(), digest_size=16).digest()
        if digest not in seen:
            seen.add(digest)
            out.append(k)
    return out


def _same_frames(frames: np.ndarray, k: int, touched: dict[int, np.ndarray]) -> list[int]:
    """Frame ``k`` and every touched frame identical to it (verified once, fixed together)."""
    return [j for j in sorted(set(touched) | {k}) if j == k or np.array_equal(frames[j], frames[k])]


def _fallback_mask(found: list[Box], mask: np.ndarray | None, rows: int, cols: int, dilate: int) -> np.ndarray:
    """The failing boxes, plus every restored part they touch, to be solid-filled."""
    out = frame_mask([Box(b.x0, b.y0, b.x1, b.y1) for b in found], 0, rows, cols, dilate)
    if mask is not None:
        for part in mask_parts(mask):
            if any(part.intersects(b) for b in found):
                out[part.y0:part.y1, part.x0:part.x1] |= mask[part.y0:part.y1, part.x0:part.x1]
    return out
