"""What every restoration backend does: fill the masked pixels of one frame, touch nothing else.

Backends work on stored values (any integer depth, signed or not, grey or RGB) so the written
image keeps its bit depth; a backend that needs 8 bits maps the frame's value range there and
back itself (:func:`to_uint8` / :func:`from_uint8`). Whatever a backend returns, the stage only
copies masked pixels into the output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class RestoreContext:
    modality: str = ""  # DICOM Modality of the instance, for prompts
    value_range: tuple[float, float] = (0, 255)  # representable stored range, for clipping


class Inpainter(Protocol):
    name: str
    version: str

    def restore(self, frame: np.ndarray, mask: np.ndarray, ctx: RestoreContext) -> np.ndarray:
        """Return ``frame`` (same shape and dtype) with ``mask`` (bool, rows×cols) filled."""
        ...


Restoration = tuple[np.ndarray, np.ndarray, RestoreContext]  # frame, mask, context


def restore_many(backend: Inpainter, items: list[Restoration]) -> list[np.ndarray]:
    """``backend.restore`` of each item; a backend that gains from batching (a model on a GPU)
    says so with a ``restore_many`` of its own, and gets all the items at once."""
    batched = getattr(backend, "restore_many", None)
    if batched is not None:
        return batched(items)
    return [backend.restore(frame, mask, ctx) for frame, mask, ctx in items]


def data_range(frame: np.ndarray) -> tuple[float, float]:
    lo, hi = float(frame.min()), float(frame.max())
    return lo, (hi if hi > lo else lo + 1.0)


def to_uint8(frame: np.ndarray, lo: float, hi: float) -> np.ndarray:
    scaled = (frame.astype(np.float32) - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def from_uint8(image: np.ndarray, lo: float, hi: float, like: np.ndarray, ctx: RestoreContext) -> np.ndarray:
    values = image.astype(np.float32) * ((hi - lo) / 255.0) + lo
    return cast_like(values, like, ctx)


def cast_like(values: np.ndarray, like: np.ndarray, ctx: RestoreContext) -> np.ndarray:
    """Round and clip into the stored range and dtype of ``like``."""
    if like.dtype.kind == "f":
        return values.astype(like.dtype)
    lo, hi = ctx.value_range
    info = np.iinfo(like.dtype)
    lo, hi = max(lo, info.min), min(hi, info.max)
    return np.clip(np.rint(values), lo, hi).astype(like.dtype)


def paste(frame: np.ndarray, restored: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Only masked pixels change, whatever the backend did elsewhere."""
    out = frame.copy()
    out[mask] = restored[mask]
    return out
