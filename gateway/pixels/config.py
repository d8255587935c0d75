"""Settings of the pixel (burned-in text) stage.

Everything that decides *what* is redacted lives here as data (policies, known-region rules),
so a site can audit and extend it without touching code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from gateway.settings_base import Section
from models.phi import KEEP_MIN_CONFIDENCE, KEEP_MIN_REGION_PX


class Rect(Section):
    """A rectangle in pixel coordinates of the stored image; ``x1``/``y1`` are exclusive."""

    x0: int = Field(ge=0)
    y0: int = Field(ge=0)
    x1: int = Field(gt=0)
    y1: int = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Rect:
        if self.x1 <= self.x0 or self.y1 <= self.y0:
            raise ValueError("rectangle must have x1 > x0 and y1 > y0")
        return self


class KnownRegionRule(Section):
    """Areas a device is known to burn text into, redacted whether or not the detector sees text.

    Like the device rules of CTP's DicomPixelAnonymizer: an instance matches when every given
    field matches (manufacturer / model are case-insensitive substrings; rows / columns exact;
    an omitted field matches anything). Matched rectangles are united with the detections.
    """

    manufacturer: str | None = None
    model: str | None = None
    modality: str | None = None
    rows: int | None = Field(default=None, gt=0)
    columns: int | None = Field(default=None, gt=0)
    regions: list[Rect] = Field(min_length=1)


class Sd2Config(Section):
    """The Stable Diffusion 2 inpainting backend (``backend: sd2``)."""

    # A local directory laid out by ``save_pretrained`` (or a model id already in the local
    # cache). Nothing is ever downloaded: loading uses ``local_files_only``.
    model: str | None = None
    steps: int = Field(default=20, ge=1, le=200)
    guidance_scale: float = Field(default=7.5, ge=0)
    # Side of the square crop around each masked region sent to the model.
    crop_size: int = Field(default=512, ge=64, le=2048)
    # "modality": prompt with the image's modality ("an ultrasound image"); "none": empty prompt.
    prompt: Literal["modality", "none"] = "modality"
    seed: int = 0
    # Crops sent through the model in one call, from all the frames and instances restored
    # together (a GPU is busy only with several; memory grows with it).
    batch_size: int = Field(default=4, ge=1, le=64)


class PixelsConfig(Section):
    # On by default: text burned into pixels is PHI as much as the header is. Turned off,
    # instances pass with their pixels untouched and Clean Pixel Data is not declared.
    enabled: bool = True
    # "cuda", "cpu" or "auto" (CUDA when present, else CPU).
    device: Literal["auto", "cuda", "cpu"] = "auto"
    # Which text finder: "model" is models.inference.TextFinder (the shipped weights);
    # "rapidocr" uses the rapidocr package (optional dependency) with the same interface.
    detector: Literal["model", "rapidocr"] = "model"
    weights_dir: Path | None = None
    # Detector threads (torch, ONNX Runtime and OpenCV) per worker process on CPU. 1 is fastest when
    # workers (or other jobs) share the cores: small convolutions scale badly and
    # oversubscription costs 10x, not 10%. 0 leaves the libraries' defaults.
    cpu_threads: int = Field(default=1, ge=0)
    # Also look for vertical lines (side labels) the first pass does not answer at all: crops
    # around thin tall columns of strokes, turned a quarter turn, each line confirmed by the
    # recogniser (models/looks/rotated.py). Vertical lines it answers faintly are always looked
    # at (the vertical look). On the synthetic sets this finds the quarter-turned PHI lines the
    # whole turned frame used to find, for 0-3 ms more per 512x512 image (see
    # models/weights/HISTORY.md). false: the vertical look only.
    rotated_text: bool = True
    # Also run a second detector network and keep what either finds: detector-1.1 fine-tuned on the
    # view it is shown, which finds lines the first scores just under its bar (dark text on bright
    # speckled tissue, a word on posterised lung). It sees only the tiles of greyscale frames in
    # which the first detector is sure of something: about one more PHI box in a thousand on the synthetic sets,
    # for no more false regions, up to a fifth more pixel-stage time on greyscale frames with text
    # and next to none on frames without (see models/weights/MODEL_CARD.md). false: one detector only.
    second_detector: bool = True
    # Ask a small network that sees each region whole, with its surroundings, whether an instance
    # whose regions the detector was not sure of holds text at all; when it doubts them all (in
    # every tile and frame), the instance has none and its pixels pass byte for byte. The
    # detector's false regions on step wedges, label maps, test cards and specular highlights then
    # cost text-free images nothing. An instance with text it believes keeps every region. With
    # it, fainter lines are redacted too (models.inference.VERIFIED_MIN_SCORE), and lines seen only
    # in a colourful frame's opponent channels (models.inference.HUE_VERIFY_THRESHOLD). Needs verifier.pt
    # in the weights directory (see models/weights/MODEL_CARD.md).
    verifier: bool = True
    # Longest side of one detector input. Larger frames are cut into overlapping tiles of at
    # most this size — never shrunk, which would take small text below what the detector sees.
    detector_max_side: int = Field(default=1024, ge=128)
    # Detections scoring below this are ignored.
    min_score: float = Field(default=0.3, ge=0, le=1)
    # "redact_all": every detected text region goes (the safe default). "keep_safe": regions
    # whose recognized text models.phi.classify calls one of ``keep_classes`` are kept.
    policy: Literal["redact_all", "keep_safe"] = "redact_all"
    keep_classes: list[str] = Field(default_factory=lambda: ["safe"])
    # keep_safe keeps a region only when the recogniser's mean confidence in its reading is at
    # least this: misreads of PHI ("[M]" read "P", a date read "273") come at low confidence.
    keep_min_confidence: float = Field(default=KEEP_MIN_CONFIDENCE, ge=0, le=1)
    # ... and only when the region is at least this many pixels on its short side: text under 8 px
    # is misread confidently (a 5 px "[M]" read as "P").
    keep_min_region_px: int = Field(default=KEEP_MIN_REGION_PX, ge=0)
    # Read every detected region and record its category (name, id, date, ..., safe, other) in
    # the audit, never its text. Costs the recogniser's time (a few ms a region) on images with text.
    audit_categories: bool = True
    known_regions: list[KnownRegionRule] = Field(default_factory=list)
    # Pixels added around every region before restoration (anti-aliasing, JPEG ringing).
    dilate: int = Field(default=3, ge=0, le=64)
    backend: Literal["telea", "sd2", "fill"] = "telea"
    telea_radius: int = Field(default=5, ge=1, le=50)
    sd2: Sd2Config = Field(default_factory=Sd2Config)
    # How a changed instance is written ("uncompressed" keeps implicit VR when received so,
    # else explicit VR little endian). Unchanged instances always keep their bytes.
    output_syntax: Literal["uncompressed", "rle", "jpegls", "j2k"] = "uncompressed"
    # Re-run the detector after restoration; an instance that still shows text after the
    # solid-fill fallback is quarantined. Turning this off also stops 113101 being declared.
    verify: bool = True
    # Solid-fill rounds after a failed verification (each followed by another check) before
    # the instance is quarantined.
    fill_rounds: int = Field(default=3, ge=1, le=8)
    # Frames of a multi-frame instance are compared with the first frame; a frame whose
    # changed area exceeds this fraction is checked whole, otherwise only where it changed.
    changed_area_full_check: float = Field(default=0.25, gt=0, le=1)
    # Instances of more frames than this are quarantined rather than checked (memory, time).
    max_frames: int = Field(default=5000, ge=1)
    # Nothing is decoded whose header declares more bytes of image than this (rows x columns x
    # frames x samples x bytes a sample): the worker's own bound, like ingest.max_pixel_bytes,
    # for files that did not come through the receiver (batch mode) or came under a larger cap.
    max_pixel_bytes: int = Field(default=1024**3, gt=0)
    # Single-frame instances a worker decodes and runs through the detector together (batches
    # across instances: a GPU worker's device stays busy); they are held in memory meanwhile.
    batch_instances: int = Field(default=8, ge=1, le=256)
