"""Work done for several instances at once, ahead of their turns (``PixelStage.prepare``).

A GPU worker keeps its device busy only with several images per network call; a CPU worker also
gains from a few. So a group of single-frame instances is decoded and detected together and, with a
backend that batches, restored together too. What comes of it waits, one :class:`Prepared` per
instance, for that instance's own turn, which checks it is for the very same dataset object.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydicom import Dataset

from gateway.pipeline.stage import contained
from gateway.pixels.config import KnownRegionRule
from gateway.pixels.decode import Decoded, decode, has_pixel_data
from gateway.pixels.detect import DetectResult
from gateway.pixels.inpaint import Inpainter, RestoreContext, restore_many
from gateway.pixels.known import known_boxes
from gateway.pixels.mask import frame_mask
from gateway.pixels.regions import Box

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RestoredAhead:
    """The single frame of an instance restored ahead, and the regions it was restored from."""

    redact: list[Box]
    frame: np.ndarray
    mask: np.ndarray


@dataclass(frozen=True)
class Prepared:
    """What was done for one instance ahead of its turn.

    ``ds`` is the very dataset it was done for: the stage uses the rest for that object only,
    so a result that reached the wrong instance can never stand in for that instance's detection.
    """

    ds: Dataset
    decoded: Decoded
    detected: DetectResult
    restored: RestoredAhead | None = None


def decoded_ahead(ds: Dataset) -> Decoded | None:
    """``ds`` decoded if it is a single frame that decodes, else None: the stage decodes it again
    on its turn, and quarantines it with the reason."""
    try:
        if not has_pixel_data(ds) or int(ds.get("NumberOfFrames", 1) or 1) != 1:
            return None
        return decode(ds)
    except BaseException as exc:  # noqa: BLE001 - one bad instance never spoils preparing the others
        contained(exc)  # a native decoder's panic included
        return None


def restore_ahead(backend: Inpainter, batch: Sequence[tuple[Dataset, Decoded, DetectResult]],
                  rules: Sequence[KnownRegionRule], dilate: int) -> list[RestoredAhead | None]:
    """Every detected region (and known region) of each prepared instance restored, all in one
    call to ``backend``; None where there is nothing to restore, and for all if restoring fails.

    The stage redacts every region only under the default policy, so only then is this worth it.
    The datasets here are the working copies, whose header is still the header as received when
    the pixel stage runs first.
    """
    restored: list[RestoredAhead | None] = [None] * len(batch)
    todo = []
    for i, (ds, decoded, detected) in enumerate(batch):
        redact = detected.boxes + known_boxes(rules, ds)
        frame = decoded.frames[0]
        mask = frame_mask(redact, 0, *frame.shape[:2], dilate)
        if mask.any():
            rctx = RestoreContext(str(ds.get("Modality", "") or ""), decoded.value_range)
            todo.append((i, redact, (frame, mask, rctx)))
    try:
        outs = restore_many(backend, [item for _, _, item in todo])
    except Exception as exc:  # noqa: BLE001 - each instance's own turn restores it again
        log.warning("pixels: restoring ahead failed (%s); instances are restored one by one", type(exc).__name__)
        return restored
    for (i, redact, (_, mask, _)), frame in zip(todo, outs, strict=True):
        restored[i] = RestoredAhead(redact, frame, mask)
    return restored
