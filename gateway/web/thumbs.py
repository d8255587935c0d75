"""Thumbnails of de-identified outputs, with the regions the pixel stage redacted drawn on.

Only files under the outbox are ever rendered (the caller passes the outbox and this module
refuses anything outside it), so a thumbnail can never show an original. Frames are decoded and
rendered for display with the pixel stage's own code (:mod:`gateway.pixels.decode`,
:func:`gateway.pixels.render.render_frame`), one frame at a time where the codec allows, so a
long cine costs only the frames shown. Renderings are kept in a small in-process cache keyed by
the file's modification time: a file rewritten or purged is never served stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from pydicom import Dataset, dcmread
from pydicom.pixels import pixel_array
from pydicom.pixels.processing import apply_color_lut

from gateway.pixels.decode import decode
from gateway.pixels.render import render_frame

#: Outline colours (BGR) by what happened to a region; the page's legend names them.
COLOURS = {"redacted": (42, 42, 255), "kept": (80, 208, 32), "filled": (0, 176, 255)}


class NotAnOutput(Exception):
    """The file is not in the outbox, or no longer there."""


@dataclass(frozen=True)
class Outline:
    """One region to draw: its number on the page, what became of it, and where it is."""

    number: int
    kind: str  # redacted, kept, filled
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in stored pixels; x1/y1 exclusive
    frame: int | None  # None: every frame


def thumbnail(path: Path, outbox: Path, frame: int, outlines: tuple[Outline, ...], size: int) -> bytes:
    """A PNG of ``frame`` of the output at ``path``, longest side ``size``, regions outlined."""
    path = Path(path).resolve()
    if not path.is_relative_to(Path(outbox).resolve()) or not path.is_file():
        raise NotAnOutput()
    return _cached(str(path), path.stat().st_mtime_ns, frame, outlines, size)


@lru_cache(maxsize=128)
def _cached(path: str, _mtime_ns: int, frame: int, outlines: tuple[Outline, ...], size: int) -> bytes:
    ds = dcmread(path)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    frame = min(max(frame, 0), frames - 1)
    image = render_frame(_stored_frame(ds, frame, frames), ds,
                         photometric="RGB" if _is_colour(ds) else None)
    rows, cols = image.shape[:2]
    scale = min(size / max(rows, cols), 4.0)
    shown = cv2.resize(image, (max(1, round(cols * scale)), max(1, round(rows * scale))),
                       interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST)
    if shown.ndim == 2:
        shown = cv2.cvtColor(shown, cv2.COLOR_GRAY2BGR)
    else:
        shown = cv2.cvtColor(shown, cv2.COLOR_RGB2BGR)
    for outline in outlines:
        if outline.frame is None or outline.frame == frame:
            _draw(shown, outline, scale)
    ok, png = cv2.imencode(".png", shown)
    if not ok:
        raise ValueError("PNG encoding failed")
    return png.tobytes()


def _is_colour(ds: Dataset) -> bool:
    return int(ds.get("SamplesPerPixel", 1) or 1) == 3 or ds.get("PhotometricInterpretation") == "PALETTE COLOR"


def _stored_frame(ds: Dataset, index: int, frames: int) -> np.ndarray:
    """One frame as the pixel stage sees it (colour as RGB, palette expanded). Multi-frame
    instances decode just that frame when the codec allows, else all of them once."""
    if frames > 1:
        try:
            frame = pixel_array(ds, index=index, as_rgb=True)
            if ds.get("PhotometricInterpretation") == "PALETTE COLOR":
                frame = apply_color_lut(frame, ds)
            return frame
        except Exception:  # noqa: BLE001 - the stage's decoder, with its fallbacks, decides
            pass
    return decode(ds).frames[index]


def _draw(image: np.ndarray, outline: Outline, scale: float) -> None:
    x0, y0, x1, y1 = outline.box
    p0 = (int(x0 * scale), int(y0 * scale))
    p1 = (max(int(x1 * scale) - 1, p0[0] + 1), max(int(y1 * scale) - 1, p0[1] + 1))
    colour = COLOURS.get(outline.kind, COLOURS["redacted"])
    cv2.rectangle(image, p0, p1, (0, 0, 0), 4)  # a dark rim keeps the outline visible on white
    cv2.rectangle(image, p0, p1, colour, 2)
    # The region's number (as in the page's table): above the box, or inside it at the top edge.
    label = str(outline.number)
    at = (p0[0] + 3, p0[1] - 5 if p0[1] >= 16 else p0[1] + 15)
    cv2.putText(image, label, at, cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(image, label, at, cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
