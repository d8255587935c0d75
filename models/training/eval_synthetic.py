"""(a) The synthetic sets and the finder's speed, for `python -m models.training.evaluate`.

The test set is drawn with another seed than training's and only font families held out of it;
the validation set (VALIDATION_SEED, training fonts) is the one the post-processing and the looks
were chosen on. Detection is scored by the area-based matching of `models.metrics`, reading by
the character error rate on the true line boxes, cut as the recogniser was trained on them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from models.inference import TextFinder
from models.metrics import COVER, Counts, intersection, score
from models.phi import KEEP_SAFE_POLICY, short_side
from models.reading import batch_lines, cer, greedy_decode, prepare_line
from models.render import to_gray
from models.training.synth import SynthConfig, generate
from models.training.train_recognizer import crop_line, upright

#: The test set: another seed than training's (and, with ``fonts="test"``, held-out font families).
TEST_SEED = 1000
#: The validation set the post-processing and the looks were chosen on: another seed, training fonts.
VALIDATION_SEED = 500
#: Lines whose ink is at least this tall are reported separately (4-7 px text is hard even to read by eye).
LEGIBLE_PX = 10
#: Text-height bands (px, lower bound inclusive) the CER is also reported in: most errors are on the smallest text.
CER_BANDS = ((0, 8), (8, 10), (10, 16), (16, 10_000))


def region_boxes(regions) -> list:
    """The boxes of ``regions``, as the metrics take them."""
    return [r.box for r in regions]


def _text_height(box) -> int:
    """A line's height as it reads: the short side, so that a 90° line counts by its letters."""
    x0, y0, x1, y1 = box
    return min(x1 - x0, y1 - y0)


def _band(height: int) -> int:
    return next(k for k, (lo, hi) in enumerate(CER_BANDS) if lo <= height < hi)


def _band_name(band: tuple[int, int]) -> str:
    lo, hi = band
    return f"{lo}-{hi - 1}px" if hi < 10_000 else f">={lo}px"


@dataclass
class _Tally:
    """What ``synthetic`` counts over its images: detection, the keep-safe policy and the CER."""

    all_text: Counts = field(default_factory=Counts)
    phi: Counts = field(default_factory=Counts)
    phi_keep: Counts = field(default_factory=Counts)
    safe_detected: int = 0
    safe_kept: int = 0
    errors: int = 0
    chars: int = 0
    big_errors: int = 0
    big_chars: int = 0
    band_errors: list = field(default_factory=lambda: [0] * len(CER_BANDS))
    band_chars: list = field(default_factory=lambda: [0] * len(CER_BANDS))
    band_phi: list = field(default_factory=lambda: [0] * len(CER_BANDS))
    band_phi_found: list = field(default_factory=lambda: [0] * len(CER_BANDS))
    det_times: list = field(default_factory=list)
    read_times: list = field(default_factory=list)
    lines_read: int = 0
    # the main precision figure: regions touching no text line at all (a ruler's tick, a grid, a trace)
    non_text_regions: int = 0
    non_text_regions_on_text_images: int = 0
    text_images: int = 0

    def row(self, images: int, reads: bool) -> dict:
        """The set's figures; those of reading only when a recogniser ``reads``."""
        return {
            "images": images,
            "all_text": self.all_text.row(),
            "phi": self.phi.row(),
            # where the misses are, in the CER's bands
            "phi_recall_by_text_height": {
                _band_name(band): {"recall": f / g if g else None, "boxes": g}
                for band, f, g in zip(CER_BANDS, self.band_phi_found, self.band_phi)
            },
            "phi_keep_safe_policy": self.phi_keep.row() if reads else None,
            # of the detected lines that are not PHI, the share keep_safe leaves in place: what it is for
            "keep_safe_other_text_kept": self.safe_kept / self.safe_detected if self.safe_detected else None,
            "cer": self.errors / self.chars if self.chars else None,
            f"cer_text_height_ge_{LEGIBLE_PX}px": self.big_errors / self.big_chars if self.big_chars else None,
            "cer_by_text_height": {
                _band_name(band): {"cer": e / c if c else None, "characters": c}
                for band, e, c in zip(CER_BANDS, self.band_errors, self.band_chars)
            } if self.chars else None,
            "non_text_regions": self.non_text_regions,
            "non_text_regions_per_image_with_text": (self.non_text_regions_on_text_images / self.text_images
                                                     if self.text_images else None),
            "det_seconds_median": float(np.median(self.det_times)),
            "read_seconds_per_line": float(sum(self.read_times) / max(1, self.lines_read)) if self.read_times else None,
        }


def synthetic(finder: TextFinder, n: int, seed: int = TEST_SEED, fonts: str = "test", overflow: float = 0.0,
              graphics: float = 0.0) -> dict:
    """(a) Detection on held-out-font synthetic images, and recogniser CER on their true lines
    (``fonts="train"`` and VALIDATION_SEED: the validation set). ``overflow``: the share of greyscale
    images drawn on an overflowed background (`SynthConfig.overflow`), a set of its own; ``graphics``:
    the share with the graphics scanners draw beside their text (`SynthConfig.graphics`)."""
    config = SynthConfig(font_split=fonts, overflow=overflow, graphics=graphics)
    tally = _Tally()
    for i in range(n):
        sample = generate(seed, i, config)
        regions = _count_detection(finder, sample, tally)
        if finder.recognizer is not None:
            _count_reading(finder, sample, regions, tally)
    return tally.row(n, finder.recognizer is not None)


def _count_detection(finder: TextFinder, sample, tally: _Tally) -> list:
    """Detect ``sample``'s text, count all of it and its PHI lines by text height; the regions."""
    h, w = sample.image.shape[:2]
    t = time.perf_counter()
    regions = finder.detect(sample.image)
    tally.det_times.append(time.perf_counter() - t)
    text_boxes = [line.box for line in sample.lines]
    phi_boxes = [line.box for line in sample.lines if line.phi]
    tally.all_text.add(score(text_boxes, region_boxes(regions), (h, w)))
    outside = sum(not any(intersection(r.box, t) for t in text_boxes) for r in regions)
    tally.non_text_regions += outside
    if text_boxes:
        tally.text_images += 1
        tally.non_text_regions_on_text_images += outside
    found = score(phi_boxes, region_boxes(regions), (h, w), text_gt=text_boxes)
    tally.phi.add(found)
    for box, covered in zip(phi_boxes, found.coverages, strict=True):
        k = _band(_text_height(box))
        tally.band_phi[k], tally.band_phi_found[k] = tally.band_phi[k] + 1, tally.band_phi_found[k] + (covered >= COVER)
    return regions


def _count_reading(finder: TextFinder, sample, regions: list, tally: _Tally) -> None:
    """Read ``regions``: PHI left unredacted by the keep-safe policy, other text it keeps, and the
    recogniser's CER on the true lines."""
    h, w = sample.image.shape[:2]
    phi_boxes = [line.box for line in sample.lines if line.phi]
    t = time.perf_counter()
    readings = finder.readings(sample.image, regions)
    tally.read_times.append(time.perf_counter() - t)
    tally.lines_read += len(regions)
    redacted = [r.box for r, (s, c) in zip(regions, readings) if not KEEP_SAFE_POLICY.keeps(s, c, short_side(r))]
    tally.phi_keep.add(score(phi_boxes, redacted, (h, w)))
    other_boxes = [line.box for line in sample.lines if not line.phi]
    detected = score(other_boxes, region_boxes(regions), (h, w)).found
    tally.safe_detected += detected
    tally.safe_kept += detected - score(other_boxes, redacted, (h, w)).found
    for e, c, height in _line_cer(finder, sample):
        tally.errors, tally.chars = tally.errors + e, tally.chars + c
        if height >= LEGIBLE_PX:
            tally.big_errors, tally.big_chars = tally.big_errors + e, tally.big_chars + c
        k = _band(height)
        tally.band_errors[k], tally.band_chars[k] = tally.band_errors[k] + e, tally.band_chars[k] + c


#: Modalities whose 512x512 images ``speed`` times: greyscale CT, whose time is the network's, and
#: three colourful ones, which pay for the colour look (ultrasound with coloured labels, endoscopy and
#: screen captures colourful all over).
SPEED_MODALITIES = ("ct", "us", "endo", "sc")


def _speed_image(modality: str) -> np.ndarray:
    """A 512x512 test image of ``modality`` with text; in colour when the modality can be."""
    config = SynthConfig(font_split="test", modality_weights={modality: 1.0}, real_backgrounds=False)
    images = (generate(TEST_SEED, i, config).image for i in range(40))
    image = next((im for im in images if im.ndim == 3), None) if modality != "ct" else None
    if image is None:
        image = generate(TEST_SEED, 0, config).image
    return cv2.resize(image, (512, 512), interpolation=cv2.INTER_AREA) if image.dtype == np.uint8 else \
        np.ascontiguousarray(image[:512, :512])


def speed(finder: TextFinder, repeats: int = 10) -> dict:
    """Median detection time on 512x512 images (SPEED_MODALITIES) and recognition time per line at
    batch 1.

    CPU time of this process (one thread, as ``main`` loads the finder) is reported next to wall time:
    on a shared machine the wall clock mostly measures the neighbours.
    """

    def timed(fn):
        wall, cpu = [], []
        for _ in range(repeats):
            t, c = time.perf_counter(), time.process_time()
            fn()
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        return 1000 * float(np.median(cpu)), 1000 * float(np.median(wall))

    out = {}
    for modality in SPEED_MODALITIES:
        image = _speed_image(modality)
        regions = finder.detect(image)
        out.update(zip((f"detect_cpu_ms_512_{modality}", f"detect_wall_ms_512_{modality}"),
                       timed(lambda: finder.detect(image))))
        if modality == "ct" and finder.recognizer is not None and regions:
            one = max(regions, key=lambda r: r.x1 - r.x0)
            out.update(zip(("read_cpu_ms_per_line", "read_wall_ms_per_line"), timed(lambda: finder.read(image, [one]))))
            out["read_line_width_px"] = one.x1 - one.x0
    return out


def read_crops(finder: TextFinder, crops: list[np.ndarray]) -> list[str]:
    """The recogniser's greedy reading of each crop, in one batch."""
    if not crops:
        return []
    return [t for t, _ in greedy_decode(finder.recognizer(batch_lines([prepare_line(c) for c in crops])))]


def _line_cer(finder: TextFinder, sample) -> list[tuple[int, int, int]]:
    """(edit distance, characters, text height) per ground-truth line box (margins as the detector adds)."""
    gray = to_gray(sample.image)
    crops, truths, heights = [], [], []
    for line in sample.lines:
        heights.append(_text_height(line.box))
        crop = crop_line(gray, line.box)
        if line.rotated:
            crop = upright(crop, line)
        crops.append(crop)
        truths.append(line.text)
    preds = read_crops(finder, crops)
    return [(*cer(p, truth), h) for p, truth, h in zip(preds, truths, heights)]
