"""The biometric stage: chest radiographs deformed by PriCheXy-Net (or pixelized by DP-Pix) so that
the anatomy no longer links a de-identified image to an identified one.

A *profile* stage: the profiles listed in ``biometric.profiles`` run it on their own copy of the
instance, after the pixel stage and before their header stage (``gateway.pipeline.build``), so a
destination asks for it through its profile and the other profiles' outputs keep their pixels.

Per instance:
1. judge from the header whether it is a chest radiograph (``select``): others pass unchanged,
   and the audit counts why; a CR/DX image without a body part, or in colour, is held back;
2. decode (the pixel stage's decoder; quarantine when impossible);
3. render the frame for the generator, predict and smooth its flow, and resample the *stored*
   values along it (``models.biometric.deform``) — or pixelize with DP-Pix, its noise drawn from a
   generator seeded by a keyed hash of the SOP Instance UID, so a re-sent instance gives the same
   bytes;
4. write the frame back in its own type and bit depth, photometric interpretation, VOI and rescale
   untouched, by the pixel stage's writer (``pixels.output_syntax``);
5. name the method and model version in DeidentificationMethod, and report method, mu, model
   version and runtime, the largest displacement in pixels and the time taken: never a value of
   the image. It does not declare Clean Recognizable Visual Features (113102): at the resolution
   it was trained at, a re-trained attacker re-identifies its outputs about as well as the
   originals (models/weights/MODEL_CARD_BIOMETRIC.md), and a curator reads 113102 as a promise.

BurnedInAnnotation and Clean Pixel Data stay as the pixel stage left them: the deformation is a
separate operation.
"""

from __future__ import annotations

import logging
import threading
import time

import cv2
import numpy as np
from pydicom import Dataset

from gateway import keys
from gateway.biometric.config import BiometricConfig
from gateway.biometric.render import render
from gateway.biometric.select import judge
from gateway.pipeline.stage import (
    InstanceContext,
    Quarantine,
    StageReport,
)
from gateway.pixels.decode import Decoded, decode
from gateway.pixels.encode import write_frames
from models.biometric.deform import max_displacement, warp
from models.biometric.dppix import dp_pix
from models.biometric.runtime import FlowModel

log = logging.getLogger(__name__)

#: The purpose label of the keyed hash that seeds DP-Pix's noise.
NOISE = b"biometric-noise:"


class BiometricStage:
    """Profile stage; the generator loads on first use, once for every profile that runs it."""

    name = "biometric"

    def __init__(self, config: BiometricConfig, secret: bytes, output_syntax: str = "uncompressed", *,
                 model: FlowModel | None = None):
        self.config = config
        self.secret = secret
        self.output_syntax = output_syntax
        self._model = model
        self._lock = threading.Lock()

    @property
    def model(self) -> FlowModel:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    try:
                        self._model = FlowModel.load(self.config.mu, self.config.weights_dir, self.config.cpu_threads)
                    except Exception as exc:  # noqa: BLE001 - no generator means nothing is anonymized
                        log.error("biometric generator cannot be loaded: %s", type(exc).__name__)
                        raise Quarantine(f"biometric model unavailable ({type(exc).__name__})") from None
        return self._model

    @property
    def version(self) -> str:
        if self.config.method == "dp_pix":
            d = self.config.dp_pix
            return f"dp-pix-b{d.cell}-m{d.neighbourhood}-eps{d.epsilon}-at{d.working_size}"
        return f"{self.model.version} ({self.model.runtime})"

    def __call__(self, ds: Dataset, ctx: InstanceContext) -> Dataset:
        report = ctx.report(self.name)
        verdict = judge(ds, self.config)  # 1.
        if verdict.action == "quarantine":
            raise Quarantine(verdict.key)
        if verdict.action == "skip":
            report.count("instances_skipped")
            report.count(f"instances_skipped_{verdict.key}")
            return ds
        started = time.perf_counter()
        decoded = decode(ds)  # 2.
        try:
            frame = self._anonymize(decoded.frames[0], ds, ctx.original, report)  # 3.
        except Quarantine:
            raise
        except Exception as exc:  # noqa: BLE001 - an image that cannot be anonymized is not sent
            log.warning("biometric anonymization failed (%s)", type(exc).__name__)
            raise Quarantine(f"biometric anonymization failed ({type(exc).__name__})") from None
        syntax = write_frames(ds, decoded, _stored(frame, decoded)[None], self.output_syntax)  # 4.
        ctx.note_method(f"biometric {self.version}"[:64])  # 5.
        report.count("instances_anonymized")
        if verdict.key == "view_unstated":
            report.count("instances_view_unstated")
        report.details.update({"method": self.config.method, "version": self.version,
                               "transfer_syntax": str(syntax), "seconds": round(time.perf_counter() - started, 4)})
        return ds

    def _anonymize(self, frame: np.ndarray, ds: Dataset, original: Dataset, report: StageReport) -> np.ndarray:
        """The anonymized frame, float32 in the stored value domain."""
        if self.config.method == "dp_pix":
            return self._dp_pix(frame, ds, original)
        flow = self.model.flow(render(frame, ds))
        rows, cols = frame.shape
        report.details.update({"mu": self.config.mu,
                               "max_displacement_px": round(max_displacement(flow, self.config.mu, rows, cols), 2)})
        return warp(frame, flow, self.config.mu)

    def _dp_pix(self, frame: np.ndarray, ds: Dataset, original: Dataset) -> np.ndarray:
        """DP-Pix at ``dp_pix.working_size`` over the representable range of the stored values."""
        d = self.config.dp_pix
        lo, hi = _representable(ds)
        x01 = (frame.astype(np.float32) - lo) / (hi - lo)
        small = cv2.resize(x01, (d.working_size, d.working_size), interpolation=cv2.INTER_AREA)
        pixelized = dp_pix(small, self._noise(original), d.cell, d.neighbourhood, d.epsilon)
        rows, cols = frame.shape
        return lo + cv2.resize(pixelized, (cols, rows), interpolation=cv2.INTER_NEAREST) * (hi - lo)

    def _noise(self, original: Dataset) -> np.random.Generator:
        uid = str(original.get("SOPInstanceUID", "") or "")
        digest = keys.keyed_hash(self.secret, NOISE, uid.encode("ascii", "replace"))
        return np.random.default_rng(int.from_bytes(digest[:16], "big"))


def _representable(ds: Dataset) -> tuple[float, float]:
    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 16)) or 16)
    if int(ds.get("PixelRepresentation", 0) or 0):
        return float(-(1 << (bits - 1))), float((1 << (bits - 1)) - 1)
    return 0.0, float((1 << bits) - 1)


def _stored(values: np.ndarray, decoded: Decoded) -> np.ndarray:
    """Float values back to the decoded frame's own type, rounded and kept in its stored range."""
    lo, hi = decoded.value_range
    return np.clip(np.rint(values), lo, hi).astype(decoded.frames.dtype)
