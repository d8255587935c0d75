"""The pixel stage: find burned-in text, remove it, prove it is gone, or hold the instance back.

Per instance: decode (quarantine if impossible) → detect on display renderings of every distinct
frame, united with known-region rules → policy (redact all, or keep configured safe text) →
restore the masked pixels with the configured backend → verify by detecting again, solid-fill
what still shows text, quarantine what fails after that → write changed pixels losslessly.

An instance with nothing to redact is returned untouched (same object, same PixelData bytes,
same transfer syntax). Clean Pixel Data (113101) is declared only when the stage ran and its
verification passed. The report holds counts, box coordinates, backend, verification result
and model versions — never recognized text.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import threading
import time
from collections import Counter
from typing import Any

import numpy as np
from pydicom import Dataset

from gateway.pipeline.stage import CLEAN_PIXEL_DATA, InstanceContext, Quarantine
from gateway.pixels.decode import Decoded, decode, has_pixel_data
from gateway.pixels.detect import TextDetector
from gateway.pixels.encode import mark_clean, write_frames
from gateway.pixels.finders import TextFinderLike, load_finder, resolve_device
from gateway.pixels.inpaint import (
    FillInpainter,
    Inpainter,
    RestoreContext,
    make_backend,
    restore_many,
)
from gateway.pixels.known import known_boxes
from gateway.pixels.mask import frame_mask, mask_parts
from gateway.pixels.policy import display_region, judge, judge_regions, keeps, split
from gateway.pixels.regions import Box
from gateway.pixels.verify import check_frame

log = logging.getLogger(__name__)

#: A frame that verification would leave more than this share solid-filled is quarantined: it
#: holds no text, but it holds little image either, and a person should decide.
MAX_FILLED_SHARE = 0.5


class PixelStage:
    """Instance stage; models load on first use so start-up and text-free workers stay cheap."""

    name = "pixels"

    def __init__(self, config: Any, device: str = "auto", *, finder: TextFinderLike | None = None,
                 backend: Inpainter | None = None, classify: Any = None, identifiers_from: Any = None):
        # ``config`` may be the GatewayConfig or its ``pixels`` section.
        self.config = getattr(config, "pixels", config)
        requested = device if device != "auto" else self.config.device
        self.device = resolve_device(requested)
        self._finder = finder
        self._backend = backend
        self._classify = classify
        self._identifiers_from = identifiers_from
        self._fill = FillInpainter()
        self._lock = threading.Lock()
        self._ahead = threading.local()  # per worker thread: id(ds) -> (ds, decoded, DetectResult)

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

    def _detector(self, finder: TextFinderLike | None = None) -> TextDetector:
        c = self.config
        return TextDetector(finder or self.finder, c.detector_max_side, c.min_score, c.changed_area_full_check)

    def _verifier(self) -> TextDetector:
        """What checks restored images: the finder at its working scale where it has one (see
        ``models.inference.TextFinder.single_scale``)."""
        single_scale = getattr(self.finder, "single_scale", None)
        return self._detector(single_scale() if single_scale else None)

    def _classifier(self, original: Dataset):
        if self._classify is not None:
            classify = self._classify
            identifiers = self._identifiers_from(original) if self._identifiers_from else None
        else:
            from models.phi import Identifiers, classify

            identifiers = Identifiers.from_dataset(original)
        return lambda text: classify(text, identifiers)

    # -- the stage -----------------------------------------------------------------------------
    def prefetch(self, datasets: list[Dataset]) -> None:
        """Decode and detect several instances ahead of their turn, in batches across them
        (and restore them together too, with a backend that batches).

        What a GPU worker needs to keep its device busy (and, on CPU, a few images per network
        call instead of one). The results wait, per thread, for ``__call__`` with the very same
        dataset object; anything unusual (no pixels, too many frames, undecodable) is left to
        ``__call__`` to handle, and a result not used by the next prefetch is dropped. Only
        single-frame instances are fetched ahead: a cine run is batched across its own frames.
        """
        items = []
        for ds in datasets:
            if not has_pixel_data(ds) or int(ds.get("NumberOfFrames", 1) or 1) != 1:
                continue
            try:
                items.append((ds, decode(ds)))
            except Exception:  # noqa: BLE001, S112 - __call__ decodes again and quarantines with the reason
                continue
        self._ahead.results = {}
        if not items:
            return
        try:
            found = self._detector().detect_many([(decoded, ds) for ds, decoded in items])
        except Exception as exc:  # noqa: BLE001 - each instance's own turn meets the error and handles it
            log.warning("pixels: detecting ahead failed (%s); instances are detected one by one", type(exc).__name__)
            return
        restored = self._restore_ahead(items, found)
        self._ahead.results = {id(ds): (ds, decoded, result, done)
                               for (ds, decoded), result, done in zip(items, found, restored, strict=True)}

    def _restore_ahead(self, items: list, found: list) -> list:
        """With a backend that batches (a model on a GPU), restore the prefetched instances'
        regions together too; ``__call__`` uses a result only for the very regions it redacts.

        Only under the default policy, which redacts every region: keeping safe text needs the
        recognizer and the header's identifiers first. The datasets here are the working
        copies, whose header is still the header as received when this stage runs first.
        """
        restored: list = [None] * len(items)
        if self.config.policy == "keep_safe" or not any(r.boxes for r in found):
            return restored
        if getattr(self.backend, "restore_many", None) is None:
            return restored
        todo = []
        for i, ((ds, decoded), result) in enumerate(zip(items, found, strict=True)):
            redact = result.boxes + known_boxes(self.config.known_regions, ds)
            frame = decoded.frames[0]
            mask = frame_mask(redact, 0, *frame.shape[:2], self.config.dilate)
            if mask.any():
                rctx = RestoreContext(str(ds.get("Modality", "") or ""), decoded.value_range)
                todo.append((i, redact, (frame, mask, rctx)))
        try:
            outs = restore_many(self.backend, [item for _, _, item in todo])
        except Exception as exc:  # noqa: BLE001 - each instance's own turn restores it again
            log.warning("pixels: restoring ahead failed (%s); instances are restored one by one", type(exc).__name__)
            return restored
        for (i, redact, (_, mask, _)), out in zip(todo, outs, strict=True):
            restored[i] = (redact, out, mask)
        return restored

    def _prefetched(self, ds: Dataset):
        entry = getattr(self._ahead, "results", {}).pop(id(ds), None)
        return entry[1:] if entry is not None and entry[0] is ds else None

    def __call__(self, ds: Dataset, ctx: InstanceContext) -> Dataset:
        if not has_pixel_data(ds):
            return ds
        started = time.perf_counter()
        report = ctx.report(self.name)
        cfg = self.config
        n_frames = int(ds.get("NumberOfFrames", 1) or 1)
        if n_frames > cfg.max_frames:
            raise Quarantine(f"instance has {n_frames} frames, more than pixels.max_frames")
        detector = self._detector()
        finder = detector.finder
        header = ctx.original
        ahead = self._prefetched(ds)
        if ahead is not None:
            decoded, result, _ = ahead
        else:
            decoded = decode(ds)
            result = detector.detect(decoded, ds)
        boxes = result.boxes + known_boxes(cfg.known_regions, header)
        displays: dict[int, np.ndarray] = {}

        def display_of(frame: int, frames: np.ndarray | None = None) -> np.ndarray:
            if frames is not None:
                view = Decoded(frames, decoded.photometric, decoded.layout, decoded.bits_stored,
                               decoded.signed, decoded.from_palette)
                return detector.render(view, frame, ds)
            if frame not in displays:
                displays[frame] = detector.render(decoded, frame, ds)
            return displays[frame]

        classify = judged = None
        if boxes and (cfg.policy == "keep_safe" or cfg.audit_categories):
            classify = self._classifier(header)
            judged = judge_regions(boxes, finder, display_of, classify)
        if cfg.policy == "keep_safe" and judged:
            redact, kept = split(boxes, judged, cfg.keep_classes, cfg.keep_min_confidence, cfg.keep_min_region_px)
        else:
            redact, kept = list(boxes), []
        # a device rule's box needs no category: its source says "known" already
        category = {b: j.category for b, j in zip(boxes, judged, strict=True) if b.source != "known"} if judged else {}

        def reported(regions: list[Box]) -> list[dict]:
            """Coordinates, provenance and the category; never the text."""
            return [{**b.as_report(), "category": category[b]} if b in category else b.as_report() for b in regions]

        report.details.update({
            "frames": result.frames_total,
            "frames_checked": result.frames_checked,
            "frames_skipped_duplicate": result.frames_skipped,
            "detector_version": getattr(finder, "version", "unknown"),
            "policy": cfg.policy,
        })
        if judged:
            report.details["categories"] = dict(sorted(Counter(j.category for j in judged).items()))
        report.count("regions_detected", len(result.boxes))
        if result.doubted:  # the finder believed none of them text: the instance has none
            report.count("regions_doubted", result.doubted)
        report.count("regions_kept", len(kept))

        if not redact:
            # Nothing to remove: the detection itself was the verification.
            report.details.update({"regions": [], "kept_regions": reported(kept), "backend": None,
                                   "verification": "passed"})
            report.count("instances_unchanged")
            ctx.declare(CLEAN_PIXEL_DATA)
            report.details["seconds"] = round(time.perf_counter() - started, 4)
            return ds

        # Restored in place when the decoder gave us our own array (a long cine is not copied).
        frames = decoded.frames if decoded.frames.flags.writeable else decoded.frames.copy()
        rows, cols = frames.shape[1:3]
        value_range = decoded.value_range
        rctx = RestoreContext(str(header.get("Modality", "") or ""), value_range)
        backend = self.backend
        restored = ahead[2] if ahead is not None and ahead[2] is not None and ahead[2][0] == redact else None
        if restored is not None:  # restored ahead, with other instances, from the same regions
            _, frames[0], mask = restored
            touched = {0: mask}
        else:
            touched = _restore(backend, frames, redact, cfg.dilate, rctx)

        verification = "not run"
        fallbacks: list[Box] = []
        if cfg.verify:
            still_safe = None
            if kept and classify is not None:
                def still_safe(frame: int, found: list[Box]) -> list[bool]:
                    readings = finder.readings(display_of(frame, frames), [display_region(b) for b in found])
                    return [keeps(judge(r, classify, b), cfg.keep_classes, cfg.keep_min_confidence, cfg.keep_min_region_px)
                            for r, b in zip(readings, found, strict=True)]

            verification = "passed"
            verifier = self._verifier()
            filled: dict[int, np.ndarray] = {}
            rounds = cfg.fill_rounds
            for attempt in range(rounds + 1):
                failing: dict[int, list[Box]] = {}
                for k in _frames_to_verify(frames, touched):
                    check = check_frame(verifier, display_of(k, frames), k, touched.get(k, np.zeros((rows, cols), bool)),
                                        kept, still_safe, filled.get(k))
                    if check.failures:
                        failing[k] = check.failures
                if not failing:
                    break
                if attempt == rounds:
                    report.details.update({"regions": reported(redact),
                                           "fallback_regions": [b.as_report() for b in fallbacks],
                                           "backend": backend.name, "verification": "failed"})
                    raise Quarantine("burned-in text still detected after restoration and solid fill")
                verification = "passed after fill fallback"
                for k, found in failing.items():
                    fill_mask = _fallback_mask(found, touched.get(k), rows, cols, cfg.dilate)
                    for k2 in _same_frames(frames, k, touched):
                        frames[k2] = self._fill.restore(frames[k2], fill_mask, rctx)
                        touched[k2] = touched.get(k2, np.zeros_like(fill_mask)) | fill_mask
                        filled[k2] = filled.get(k2, np.zeros_like(fill_mask)) | fill_mask
                    fallbacks.extend(Box(b.x0, b.y0, b.x1, b.y1, k, "verify") for b in found)
            if any(m.mean() > MAX_FILLED_SHARE for m in filled.values()):
                report.details.update({"regions": reported(redact),
                                       "fallback_regions": [b.as_report() for b in fallbacks],
                                       "backend": backend.name, "verification": "failed"})
                raise Quarantine("verification would leave most of a frame solid-filled")

        write_frames(ds, decoded, frames, cfg.output_syntax)
        mark_clean(ds)
        report.details.update({
            "regions": reported(redact),
            "kept_regions": reported(kept),
            "fallback_regions": [b.as_report() for b in fallbacks],
            "backend": backend.name,
            "backend_version": getattr(backend, "version", backend.name),
            "verification": verification,
            "frames_changed": len(touched),
            "transfer_syntax": str(ds.file_meta.TransferSyntaxUID),
        })
        report.count("regions_redacted", len(redact))
        report.count("regions_fallback_fill", len(fallbacks))
        report.count("instances_changed")
        if cfg.verify:
            ctx.declare(CLEAN_PIXEL_DATA)
        report.details["seconds"] = round(time.perf_counter() - started, 4)
        return ds


#: Frames handed to the backend at once: enough for a model to batch, few enough that a long
#: cine is not held twice in memory.
RESTORE_CHUNK = 16


def _restore(backend: Inpainter, frames: np.ndarray, redact: list[Box], dilate: int,
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
