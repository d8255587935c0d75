"""The pixel stage: find burned-in text, remove it, prove it is gone, or hold the instance back.

Per instance (``PixelStage.__call__``, one named step each):
1. decode (quarantine if impossible) and detect on display renderings of every distinct frame,
   united with known-region rules — or take both from ``prepare``, which did them for several
   instances at once;
2. judge the regions: the policy (redact all, or keep configured safe text);
3. restore the masked pixels with the configured backend;
4. verify by detecting again, solid-fill what still shows text, quarantine what fails after that;
5. write changed pixels losslessly;
6. report.

An instance with nothing to redact leaves after step 2 untouched (same object, same PixelData
bytes, same transfer syntax). Clean Pixel Data (113101) is declared only when the stage ran and its
verification passed. The report holds counts, box coordinates, backend, verification result and
model versions — never recognized text.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, NoReturn

import numpy as np
from pydicom import Dataset

from gateway.ingest.geometry import declared_frames, declared_pixel_bytes
from gateway.pipeline.stage import CLEAN_PIXEL_DATA, InstanceContext, Quarantine, StageReport
from gateway.pixels.ahead import Prepared, RestoredAhead, decoded_ahead, restore_ahead
from gateway.pixels.config import PixelsConfig
from gateway.pixels.decode import Decoded, decode, has_pixel_data
from gateway.pixels.detect import DetectResult, FrameDetector
from gateway.pixels.encode import mark_clean, write_frames
from gateway.pixels.finders import TextFinderLike, load_finder, resolve_device
from gateway.pixels.inpaint import Inpainter, RestoreContext, make_backend, restore_many
from gateway.pixels.known import known_boxes
from gateway.pixels.mask import frame_mask
from gateway.pixels.policy import Classify, Decision, decide, judge_regions, still_safe
from gateway.pixels.regions import Box
from gateway.pixels.verify import FillVerifier, StillSafe, Verification, reader

if TYPE_CHECKING:
    from collections.abc import Callable

    from models.phi import Identifiers

log = logging.getLogger(__name__)

#: Frames handed to the backend at once: enough for a model to batch, few enough that a long
#: cine is not held twice in memory.
RESTORE_CHUNK = 16


@dataclass
class _Work:
    """One instance on its way through ``PixelStage.__call__``: each step fills in its part,
    in place of the closures and locals one long method would share."""

    ds: Dataset
    header: Dataset  # the instance as received: its identifiers, its device
    report: StageReport
    started: float = field(default_factory=time.perf_counter)
    # 1. decode and detect
    detector: FrameDetector = field(init=False)
    decoded: Decoded = field(init=False)
    detected: DetectResult = field(init=False)
    ahead: RestoredAhead | None = field(default=None, init=False)
    boxes: list[Box] = field(init=False)  # detected, and from known-region rules
    # 2. judge
    classify: Classify | None = field(default=None, init=False)
    decision: Decision = field(init=False)
    # 3. and 4. restore, verify and fill
    frames: np.ndarray = field(init=False)  # the frames being restored
    touched: dict[int, np.ndarray] = field(default_factory=dict, init=False)  # each changed frame's changed pixels
    rctx: RestoreContext = field(init=False)
    verification: Verification = field(default_factory=lambda: Verification("not run"), init=False)
    _displays: dict[int, np.ndarray] = field(default_factory=dict, init=False, repr=False)

    def display(self, frame: int) -> np.ndarray:
        """Frame ``frame`` as received, rendered once: the policy reads it."""
        if frame not in self._displays:
            self._displays[frame] = self.detector.render(self.decoded, frame, self.ds)
        return self._displays[frame]

    def restored_display(self, frame: int) -> np.ndarray:
        """Frame ``frame`` as restored so far, rendered anew each time: every fill changes it."""
        return self.detector.render(replace(self.decoded, frames=self.frames), frame, self.ds)


class PixelStage:
    """Instance stage; models load on first use so start-up and text-free workers stay cheap."""

    name = "pixels"

    def __init__(self, config: PixelsConfig, device: str = "auto", *, finder: TextFinderLike | None = None,
                 backend: Inpainter | None = None,
                 classify: Callable[[str, Identifiers | None], str] | None = None,
                 identifiers_from: Callable[[Dataset], Identifiers | None] | None = None):
        self.config = config
        self.device = resolve_device(device if device != "auto" else config.device)
        self._finder = finder
        self._backend = backend
        self._classify = classify
        self._identifiers_from = identifiers_from
        self._lock = threading.Lock()

    # -- lazy models -------------------------------------------------------------------------
    @property
    def finder(self) -> TextFinderLike:
        if self._finder is None:
            with self._lock:
                if self._finder is None:
                    self._limit_threads()
                    try:
                        self._finder = load_finder(self.config.detector, self.config.weights_dir, self.device,
                                                   self.config.cpu_threads, self.config.rotated_text,
                                                   self.config.second_detector, self.config.verifier)
                    except Exception as exc:  # noqa: BLE001 - no detector means nothing is verified
                        log.error("text detector cannot be loaded: %s", type(exc).__name__)
                        raise Quarantine(f"text detector unavailable ({type(exc).__name__})") from None
        return self._finder

    def _limit_threads(self) -> None:
        """Bound PyTorch's threads if it is in use already (the finder bounds its own when it
        imports it; a CPU worker that detects with ONNX Runtime never imports it)."""
        torch = sys.modules.get("torch")
        if self.device == "cpu" and self.config.cpu_threads and torch is not None:
            torch.set_num_threads(self.config.cpu_threads)

    @property
    def backend(self) -> Inpainter:
        if self._backend is None:
            with self._lock:
                if self._backend is None:
                    self._backend = make_backend(self.config, self.device)
        return self._backend

    def _detector(self, finder: TextFinderLike | None = None) -> FrameDetector:
        c = self.config
        return FrameDetector(finder or self.finder, c.detector_max_side, c.min_score, c.changed_area_full_check)

    def _verifier(self) -> FrameDetector:
        """What checks restored images: the finder at its working scale where it has one (see
        ``models.inference.TextFinder.single_scale``)."""
        single_scale = getattr(self.finder, "single_scale", None)
        return self._detector(single_scale() if single_scale else None)

    def _classifier(self, original: Dataset) -> Classify:
        if self._classify is not None:
            classify = self._classify
            identifiers = self._identifiers_from(original) if self._identifiers_from else None
        else:
            from models.phi import Identifiers, classify

            identifiers = Identifiers.from_dataset(original)
        return lambda text: classify(text, identifiers)

    # -- several instances at once -------------------------------------------------------------
    def prepare(self, datasets: list[Dataset]) -> list[Prepared | None]:
        """Decode and detect several instances ahead of their turn, in batches across them
        (and restore them together too, with a backend that batches).

        What a GPU worker needs to keep its device busy (and, on CPU, a few images per network
        call instead of one). Element i is for ``datasets[i]``, to come back to ``__call__`` with
        that very dataset object; it is None for anything unusual (no pixels, several frames,
        undecodable), which its own turn handles, and for all of them if detecting fails. Only
        single-frame instances are prepared: a cine run is batched across its own frames.
        """
        out: list[Prepared | None] = [None] * len(datasets)
        todo = [(i, decoded) for i, ds in enumerate(datasets)
                if self._fits(ds) and (decoded := decoded_ahead(ds)) is not None]
        if not todo:
            return out
        try:
            found = self._detector().detect_many([(decoded, datasets[i]) for i, decoded in todo])
        except Exception as exc:  # noqa: BLE001 - each instance's own turn meets the error and handles it
            log.warning("pixels: detecting ahead failed (%s); instances are detected one by one", type(exc).__name__)
            return out
        batch = [(datasets[i], decoded, detected) for (i, decoded), detected in zip(todo, found, strict=True)]
        for (i, _), (ds, decoded, detected), ahead in zip(todo, batch, self._restore_ahead(batch), strict=True):
            out[i] = Prepared(ds, decoded, detected, ahead)
        return out

    def _restore_ahead(self, batch: list[tuple[Dataset, Decoded, DetectResult]]) -> list[RestoredAhead | None]:
        """With a backend that batches (a model on a GPU), restore the prepared instances'
        regions together too; ``__call__`` uses a result only for the very regions it redacts.
        Only under the default policy, which redacts every region: keeping safe text needs the
        recognizer and the header's identifiers first."""
        if self.config.policy == "keep_safe" or not any(detected.boxes for _, _, detected in batch):
            return [None] * len(batch)
        if getattr(self.backend, "restore_many", None) is None:
            return [None] * len(batch)
        return restore_ahead(self.backend, batch, self.config.known_regions, self.config.dilate)

    # -- the stage -----------------------------------------------------------------------------
    def __call__(self, ds: Dataset, ctx: InstanceContext) -> Dataset:
        """The six steps of the module's docstring, each a method below; ``ds`` is changed in
        place. An instance with nothing to redact leaves after step 2, untouched."""
        if not has_pixel_data(ds):
            return ds
        work = _Work(ds, ctx.original, ctx.report(self.name))
        self._decode_and_detect(work, ctx.prepared.get(self.name))  # 1.
        self._judge(work)  # 2.
        self._report_found(work)  # now: a quarantine further on reports it too
        if not work.decision.redact:
            return self._pass_unchanged(work, ctx)
        self._restore(work)  # 3.
        self._verify_and_fill(work)  # 4.
        self._write(work)  # 5.
        self._report_changed(work, ctx)  # 6.
        return ds

    def _fits(self, ds: Dataset) -> bool:
        try:
            self._check_declared_size(ds)
        except Quarantine:
            return False  # its own turn quarantines it
        return True

    def _check_declared_size(self, ds: Dataset) -> None:
        """Refuse before decoding what would not fit: the decoder allocates what the header
        declares, whatever the pixel data really holds (a 1 KB RLE stream can declare 20000²)."""
        frames = declared_frames(ds)
        if frames is not None and frames > self.config.max_frames:
            raise Quarantine("instance has more frames than pixels.max_frames")
        size = declared_pixel_bytes(ds)
        if size is not None and size > self.config.max_pixel_bytes:
            raise Quarantine("image larger than pixels.max_pixel_bytes")

    def _decode_and_detect(self, work: _Work, prepared: Prepared | None) -> None:
        """1. Decode, and find the text of every frame — or take both from ``prepare`` where it
        prepared this very dataset — then add the regions the device's known-region rules name."""
        self._check_declared_size(work.ds)
        work.detector = self._detector()
        if prepared is not None and prepared.ds is work.ds:
            work.decoded, work.detected, work.ahead = prepared.decoded, prepared.detected, prepared.restored
        else:
            work.decoded = decode(work.ds)
            work.detected = work.detector.detect(work.decoded, work.ds)
        work.boxes = work.detected.boxes + known_boxes(self.config.known_regions, work.header)

    def _judge(self, work: _Work) -> None:
        """2. Which regions go. They are read (and the text dropped at once) only where the
        policy needs their category, or the audit asks for it."""
        c = self.config
        judged = None
        if work.boxes and (c.policy == "keep_safe" or c.audit_categories):
            work.classify = self._classifier(work.header)
            judged = judge_regions(work.boxes, work.detector.finder, work.display, work.classify)
        work.decision = decide(work.boxes, judged, c)

    def _restore(self, work: _Work) -> None:
        """3. Restore every region to redact with the configured backend — unless ``prepare``
        restored exactly these regions already. In place when the decoder gave the stage its own
        array (a long cine is not copied)."""
        decoded = work.decoded
        work.frames = decoded.frames if decoded.frames.flags.writeable else decoded.frames.copy()
        work.rctx = RestoreContext(str(work.header.get("Modality", "") or ""), decoded.value_range)
        ahead = work.ahead
        if ahead is not None and ahead.redact == work.decision.redact:
            work.frames[0] = ahead.frame
            work.touched = {0: ahead.mask}
        else:
            work.touched = _restore_frames(self.backend, work.frames, work.decision.redact, self.config.dilate,
                                           work.rctx)

    def _verify_and_fill(self, work: _Work) -> None:
        """4. Detect again on what was restored; solid-fill what still shows text (in
        ``work.frames``), or hold the instance back. Skipped when ``pixels.verify`` is off."""
        c = self.config
        if not c.verify:
            return
        verify = FillVerifier(self._verifier(), work.restored_display, work.decision.kept, self._still_safe(work),
                              c.fill_rounds, c.dilate, work.rctx, reader(self.finder))
        work.verification = verify(work.frames, work.touched)
        if work.verification.unread:  # found again, read as nothing: not text (a smear, a tick, a seam)
            work.report.count("verify_regions_unread", work.verification.unread)
        if work.verification.failure is not None:
            self._fail(work, work.verification.failure)

    def _still_safe(self, work: _Work) -> StillSafe | None:
        """For text verification finds on kept regions: whether it still reads as safe text."""
        if not work.decision.kept or work.classify is None:
            return None
        return partial(still_safe, work.detector.finder, work.restored_display, work.classify, self.config)

    def _write(self, work: _Work) -> None:
        """5. The restored frames written back losslessly, and a header that agrees with them."""
        write_frames(work.ds, work.decoded, work.frames, self.config.output_syntax)
        mark_clean(work.ds)

    # -- the report ----------------------------------------------------------------------------
    def _report_found(self, work: _Work) -> None:
        """What detection and the policy found: counts, provenance and categories, never text."""
        report, detected, decision = work.report, work.detected, work.decision
        report.details.update({
            "frames": detected.frames_total,
            "frames_checked": detected.frames_checked,
            "frames_skipped_duplicate": detected.frames_skipped,
            "detector_version": getattr(work.detector.finder, "version", "unknown"),
            "policy": self.config.policy,
        })
        if decision.judged:
            report.details["categories"] = dict(sorted(Counter(j.category for j in decision.judged).items()))
        report.count("regions_detected", len(detected.boxes))
        if detected.doubted:  # the finder believed none of them text: the instance has none
            report.count("regions_doubted", detected.doubted)
        report.count("regions_kept", len(decision.kept))

    def _pass_unchanged(self, work: _Work, ctx: InstanceContext) -> Dataset:
        """Nothing to remove: the detection itself was the verification."""
        work.report.details.update({"regions": [], "kept_regions": work.decision.reported(work.decision.kept),
                                    "backend": None, "verification": "passed"})
        work.report.count("instances_unchanged")
        ctx.declare(CLEAN_PIXEL_DATA)
        _timed(work)
        return work.ds

    def _report_changed(self, work: _Work, ctx: InstanceContext) -> None:
        """6. What was redacted, how, and how it was verified."""
        report, decision, backend = work.report, work.decision, self.backend
        fallbacks = work.verification.fallbacks
        report.details.update({
            "regions": decision.reported(decision.redact),
            "kept_regions": decision.reported(decision.kept),
            "fallback_regions": [b.as_report() for b in fallbacks],
            "backend": backend.name,
            "backend_version": getattr(backend, "version", backend.name),
            "verification": work.verification.outcome,
            "frames_changed": len(work.touched),
            "transfer_syntax": str(work.ds.file_meta.TransferSyntaxUID),
        })
        report.count("regions_redacted", len(decision.redact))
        report.count("regions_fallback_fill", len(fallbacks))
        report.count("instances_changed")
        if self.config.verify:
            ctx.declare(CLEAN_PIXEL_DATA)
        _timed(work)

    def _fail(self, work: _Work, reason: str) -> NoReturn:
        """Hold the instance back; the report says what was redacted and filled before giving up."""
        work.report.details.update({
            "regions": work.decision.reported(work.decision.redact),
            "fallback_regions": [b.as_report() for b in work.verification.fallbacks],
            "backend": self.backend.name,
            "verification": "failed",
            "verification_check": work.verification.check,
        })
        raise Quarantine(reason)


def _timed(work: _Work) -> None:
    """The stage's time on the instance, for the audit (last: it is what the report adds up)."""
    work.report.details["seconds"] = round(time.perf_counter() - work.started, 4)


def _restore_frames(backend: Inpainter, frames: np.ndarray, redact: list[Box], dilate: int,
                    rctx: RestoreContext) -> dict[int, np.ndarray]:
    """Restore every frame with something to redact, in place; returns their masks."""
    rows, cols = frames.shape[1:3]
    masks = {k: m for k in range(len(frames)) if (m := frame_mask(redact, k, rows, cols, dilate)).any()}
    order = list(masks)
    for start in range(0, len(order), RESTORE_CHUNK):
        chunk = order[start:start + RESTORE_CHUNK]
        for k, out in zip(chunk, restore_many(backend, [(frames[k], masks[k], rctx) for k in chunk]), strict=True):
            frames[k] = out
    return masks
