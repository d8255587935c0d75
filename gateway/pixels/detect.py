"""Finding burned-in text in every frame that could hold it, without checking a frame twice.

A frame is rendered for display at stored resolution and checked whole: its flat margins
(uniform air or black around the image, which cannot hold ink) are cropped away, and a frame
larger than ``max_side`` is cut into overlapping tiles — never shrunk, which would take small
text below what the detector can see.

Multi-frame instances (cine ultrasound, XA runs) are checked as cheaply as safety allows:
- a frame byte-identical to one already checked is skipped;
- the first frame is checked whole; what it shows in pixels that never change across the run
  (static overlays: patient banner, clock, labels) is found once and masked in every frame;
- every other distinct frame is compared with the first: where it changed over a large area it
  is checked whole, otherwise each changed area (with context around it) is checked, since text
  can appear, or change, mid-run (a counter, a caption added to some frames).
Detection runs batched across all these images, a batch at a time, so memory stays at a few
frames however long the run is.

An instance none of whose regions the finder believes to be text (`models.inference.VERIFIER`:
the detector sure of none, the region verifier doubting them all) has none: its regions are
counted as doubted, and its pixels pass untouched. The judgement is of the whole instance, so that
a faint line is never set aside while other text of the same instance (in another tile, crop or
frame) is believed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from pydicom import Dataset

from gateway.pixels.decode import Decoded
from gateway.pixels.finders import TextFinderLike
from gateway.pixels.regions import Box, from_detection
from gateway.pixels.render import render_frame

# Context kept around a changed area of a later frame, in stored pixels, so that a changed digit
# is seen together with the text around it.
CHANGE_CONTEXT = 24
# Crops smaller than this (in detector pixels) are padded up: detectors need some context.
MIN_CROP = 64
BATCH = 8
# Flat margin kept around the active part of a frame, as context for the detector.
FLAT_CONTEXT = 24
# Overlap between tiles of a large frame (more than a text line is tall).
TILE_OVERLAP = 96


@dataclass
class DetectResult:
    boxes: list[Box] = field(default_factory=list)
    frames_total: int = 0
    frames_checked: int = 0  # frames looked at, wholly or where they changed
    frames_skipped: int = 0  # duplicates of a frame already checked
    images_detected: int = 0  # detector inputs (whole frames and crops)
    doubted: int = 0  # regions set aside: the finder believed none of the instance's regions


@dataclass
class _Job:
    image: np.ndarray
    scale: float
    offset: tuple[int, int]
    frame: int | None


class FrameDetector:
    """Runs a finder over an instance's frames and returns boxes in stored coordinates.

    The finder's network is ``models.detector.TextDetector``; this drives it frame by frame.
    """

    def __init__(self, finder: TextFinderLike, max_side: int = 1024, min_score: float = 0.3,
                 changed_area_full_check: float = 0.25):
        self.finder = finder
        self.max_side = max_side
        self.min_score = min_score
        self.changed_area_full_check = changed_area_full_check

    # -- rendering -------------------------------------------------------------------------
    def render(self, decoded: Decoded, index: int, ds: Dataset | None) -> np.ndarray:
        photometric = "RGB" if decoded.layout == "rgb" else decoded.photometric
        return render_frame(decoded.frames[index], ds, photometric)

    def _whole(self, display: np.ndarray, frame: int | None) -> list[_Job]:
        """The whole frame, less any flat margin, in tiles of at most ``max_side``.

        A region where no pixel differs from its neighbours holds no ink, so it cannot hold
        text; cropping it away (keeping FLAT_CONTEXT pixels of it as context) saves detector
        time without hiding anything. Large frames are tiled, never shrunk: shrinking would
        take small text below what the detector can see.
        """
        x0 = y0 = 0
        box = _active_box(display)
        if box is not None and _crop_pays(display.shape[:2], box):
            display = np.ascontiguousarray(display[box.y0:box.y1, box.x0:box.x1])
            x0, y0 = box.x0, box.y0
        return [_Job(np.ascontiguousarray(display[t.y0:t.y1, t.x0:t.x1]), 1.0, (x0 + t.x0, y0 + t.y0), frame)
                for t in tiles(display.shape[:2], self.max_side)]

    def _crop(self, display: np.ndarray, box: Box, frame: int | None) -> list[_Job]:
        rows, cols = display.shape[:2]
        b = box
        # Grow small crops to MIN_CROP around their centre, within the image.
        for axis_len, lo, hi in ((cols, "x0", "x1"), (rows, "y0", "y1")):
            size = getattr(b, hi) - getattr(b, lo)
            if size < MIN_CROP:
                grow = (min(MIN_CROP, axis_len) - size + 1) // 2
                new_lo = max(0, getattr(b, lo) - grow)
                new_hi = min(axis_len, new_lo + max(size, min(MIN_CROP, axis_len)))
                new_lo = max(0, new_hi - max(size, min(MIN_CROP, axis_len)))
                b = Box(**{**b.__dict__, lo: new_lo, hi: new_hi})
        image = display[b.y0:b.y1, b.x0:b.x1]
        return [_Job(np.ascontiguousarray(image[t.y0:t.y1, t.x0:t.x1]), 1.0, (b.x0 + t.x0, b.y0 + t.y0), frame)
                for t in tiles(image.shape[:2], self.max_side)]

    # -- running the finder ----------------------------------------------------------------
    def _run(self, jobs: Sequence[_Job], source: str = "detector") -> tuple[list[Box], bool]:
        return self._run_each([jobs], source)[0]

    def _run_each(self, groups: Sequence[Sequence[_Job]], source: str = "detector") -> list[tuple[list[Box], bool]]:
        """Boxes for each group of jobs, and whether the finder believes any of them is text; the
        jobs of all groups go to the finder together, BATCH images at a time. A finder that
        cannot tell (rapidocr, one without a verifier) believes every region it returns."""
        find = getattr(self.finder, "find_batch", self.finder.detect_batch)
        holds_text = getattr(self.finder, "holds_text", None)
        flat = [(g, job) for g, jobs in enumerate(groups) for job in jobs]
        out: list[list[Box]] = [[] for _ in groups]
        believed = [False] * len(groups)
        for start in range(0, len(flat), BATCH):
            chunk = flat[start:start + BATCH]
            results = find([job.image for _, job in chunk])
            for (g, job), regions in zip(chunk, results, strict=True):
                regions = [r for r in regions if getattr(r, "score", 1.0) >= self.min_score]
                out[g] += [from_detection(r, job.scale, job.offset, job.frame, source) for r in regions]
                if regions and not believed[g]:
                    believed[g] = holds_text is None or holds_text(job.image, regions)
        return list(zip(out, believed, strict=True))

    def detect_image(self, display: np.ndarray, frame: int | None = None, source: str = "detector") -> list[Box]:
        """Whole-image detection on one display rendering, every region, believed or not."""
        return self._run(self._whole(display, frame), source)[0]

    def detect_crops(self, display: np.ndarray, crops: Sequence[Box], frame: int | None,
                     source: str = "verify") -> list[Box]:
        return self._run([job for c in crops for job in self._crop(display, c, frame)], source)[0]

    # -- whole instances -------------------------------------------------------------------
    def detect_many(self, items: Sequence[tuple[Decoded, Dataset | None]]) -> list[DetectResult]:
        """``detect`` for several instances, the single frames of all of them batched together
        (multi-frame instances are detected one by one, as ``detect`` does)."""
        results: list[DetectResult | None] = [None] * len(items)
        single = [i for i, (decoded, _) in enumerate(items) if decoded.n_frames == 1]
        jobs = [self._whole(self.render(items[i][0], 0, items[i][1]), None) for i in single]
        for i, group, (boxes, believed) in zip(single, jobs, self._run_each(jobs), strict=True):
            rows, cols = items[i][0].frames.shape[1:3]
            results[i] = _judged(DetectResult(boxes=[c for b in boxes if (c := b.clip(rows, cols)) is not None],
                                              frames_total=1, frames_checked=1, images_detected=len(group)), believed)
        return [r if r is not None else self.detect(*items[i]) for i, r in enumerate(results)]

    def detect(self, decoded: Decoded, ds: Dataset | None) -> DetectResult:
        """Boxes for every frame; memory stays at a few frames however long the run is."""
        frames = decoded.frames
        n = decoded.n_frames
        rows, cols = frames.shape[1:3]
        result = DetectResult(frames_total=n)
        first_jobs = self._whole(self.render(decoded, 0, ds), None if n == 1 else 0)
        result.images_detected = len(first_jobs)
        result.frames_checked = 1
        first, believed = self._run(first_jobs)
        first = [c for b in first if (c := b.clip(rows, cols)) is not None]
        if n == 1:
            result.boxes = first
            return _judged(result, believed)

        canonical = list(range(n))  # frame -> the frame with identical bytes that was checked
        static = np.ones((rows, cols), bool)
        # For each first-frame box: the later frames that left (some of) its pixels as they were.
        unchanged_in: list[list[int]] = [[] for _ in first]
        later_boxes: list[Box] = []
        pending: list[_Job] = []
        seen = {hashlib.blake2b(frames[0].tobytes(), digest_size=16).digest(): 0}
        for k in range(1, n):
            digest = hashlib.blake2b(frames[k].tobytes(), digest_size=16).digest()
            if digest in seen:
                canonical[k] = seen[digest]
                result.frames_skipped += 1
                continue
            seen[digest] = k
            result.frames_checked += 1
            changed = frames[k] != frames[0]
            if changed.ndim == 3:
                changed = changed.any(axis=2)
            static &= ~changed
            for i, b in enumerate(first):
                if changed[b.y0:b.y1, b.x0:b.x1].mean() < 0.99:
                    unchanged_in[i].append(k)
            display = self.render(decoded, k, ds)
            if changed.mean() > self.changed_area_full_check:
                pending.extend(self._whole(display, k))
            else:
                for box in _changed_areas(changed):
                    pending.extend(self._crop(display, box.pad(CHANGE_CONTEXT, rows, cols), k))
            if len(pending) >= BATCH:
                result.images_detected += len(pending)
                boxes, seen_text = self._run(pending)
                later_boxes += boxes
                believed |= seen_text
                pending = []
        result.images_detected += len(pending)
        boxes, seen_text = self._run(pending)
        later_boxes += boxes
        believed |= seen_text
        later_boxes = [c for b in later_boxes if (c := b.clip(rows, cols)) is not None]
        result.boxes = _spread(first, later_boxes, static, unchanged_in, canonical)
        return _judged(result, believed)


def _judged(result: DetectResult, believed: bool) -> DetectResult:
    """``result``, its regions set aside as doubted if the finder believed none of them."""
    if result.boxes and not believed:
        result.doubted, result.boxes = len(result.boxes), []
    return result


def _spread(first: list[Box], later: list[Box], static: np.ndarray, unchanged_in: list[list[int]],
            canonical: list[int]) -> list[Box]:
    """Give every frame the boxes that concern it.

    A first-frame box lying in pixels that never change is a static overlay: masked in every
    frame. Any other first-frame box also applies to each later frame that did not change
    (almost) all of it — that frame shows the same pixels there, hence the same text. Skipped
    duplicate frames get the boxes of the frame they duplicate.
    """
    out: list[Box] = list(later)
    for b, frames in zip(first, unchanged_in, strict=True):
        if static[b.y0:b.y1, b.x0:b.x1].mean() >= 0.9:
            out.append(Box(b.x0, b.y0, b.x1, b.y1, None, b.source))
            continue
        out.append(b)
        out.extend(Box(b.x0, b.y0, b.x1, b.y1, k, b.source) for k in frames)
    by_frame: dict[int, list[Box]] = {}
    for b in out:
        if b.frame is not None:
            by_frame.setdefault(b.frame, []).append(b)
    for k, j in enumerate(canonical):
        if j != k:
            out.extend(Box(b.x0, b.y0, b.x1, b.y1, k, b.source) for b in by_frame.get(j, ()))
    return sorted(set(out), key=lambda b: (-1 if b.frame is None else b.frame, b.x0, b.y0, b.x1, b.y1))


def tiles(shape: tuple[int, int], max_side: int, overlap: int = TILE_OVERLAP) -> list[Box]:
    """Near-equal overlapping tiles of at most ``max_side`` covering ``shape`` (one if it fits).

    Equal sizes avoid a thin last tile (which a finder might upsample, or see without context);
    the overlap is wider than a text line is tall, so a line cut by one tile is whole in the next.
    """
    rows, cols = shape

    def spans(length: int) -> list[tuple[int, int]]:
        if length <= max_side:
            return [(0, length)]
        count = -(-(length - overlap) // (max_side - overlap))
        size = -(-(length + (count - 1) * overlap) // count)
        starts = [round(i * (length - size) / (count - 1)) for i in range(count)]
        return [(s, s + size) for s in starts]

    return [Box(x0, y0, x1, y1) for y0, y1 in spans(rows) for x0, x1 in spans(cols)]


def _active_box(display: np.ndarray) -> Box | None:
    """Bounding box of every pixel that differs from a neighbour, plus context; None if none
    of the image is flat margin."""
    rows, cols = display.shape[:2]
    grad = cv2.morphologyEx(display, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    if grad.ndim == 3:
        grad = grad.max(axis=2)
    ys = np.flatnonzero(grad.any(axis=1))
    if ys.size == 0:
        return Box(0, 0, min(cols, MIN_CROP), min(rows, MIN_CROP))  # a uniform image
    xs = np.flatnonzero(grad.any(axis=0))
    box = Box(int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1).pad(FLAT_CONTEXT, rows, cols)
    if box.area >= rows * cols:
        return None
    return box


def _crop_pays(shape: tuple[int, int], box: Box) -> bool:
    """Whether detecting on the crop is cheaper, given that the finder may upsample small inputs."""
    try:
        from models.postprocess import working_scale
    except ImportError:  # another finder: assume it works at the given scale
        def working_scale(h: int, w: int) -> float:
            return 1.0
    rows, cols = shape
    full = rows * cols * working_scale(rows, cols) ** 2
    h, w = box.y1 - box.y0, box.x1 - box.x0
    return h * w * working_scale(h, w) ** 2 < 0.8 * full


def _changed_areas(changed: np.ndarray) -> list[Box]:
    """Bounding boxes of the connected changed areas, nearby ones merged."""
    grown = cv2.dilate(changed.astype(np.uint8), np.ones((9, 9), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    return [Box(int(x), int(y), int(x + w), int(y + h)) for x, y, w, h, _ in stats[1:count]]
