"""Rectangles in stored-pixel coordinates, the one currency between detect, mask and verify.

Reports carry these coordinates and at most a category (name, date, safe...) of a region: never
the text it held.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Box:
    """An axis-aligned rectangle; ``x1``/``y1`` are exclusive. ``frame`` None means every frame."""

    x0: int
    y0: int
    x1: int
    y1: int
    frame: int | None = None
    source: str = "detector"  # "detector", "known", "verify"

    @property
    def area(self) -> int:
        return max(0, self.x1 - self.x0) * max(0, self.y1 - self.y0)

    def pad(self, n: int, rows: int, cols: int) -> Box:
        return Box(max(0, self.x0 - n), max(0, self.y0 - n), min(cols, self.x1 + n), min(rows, self.y1 + n),
                   self.frame, self.source)

    def clip(self, rows: int, cols: int) -> Box | None:
        b = Box(max(0, self.x0), max(0, self.y0), min(cols, self.x1), min(rows, self.y1), self.frame, self.source)
        return b if b.area > 0 else None

    def intersects(self, other: Box) -> bool:
        return self.x0 < other.x1 and other.x0 < self.x1 and self.y0 < other.y1 and other.y0 < self.y1

    def applies_to(self, frame: int) -> bool:
        return self.frame is None or self.frame == frame

    def coords(self) -> list[int]:
        return [self.x0, self.y0, self.x1, self.y1]

    def as_report(self) -> dict:
        """Coordinates and provenance only."""
        out: dict = {"box": self.coords(), "source": self.source}
        if self.frame is not None:
            out["frame"] = self.frame
        return out


def from_detection(region, scale: float, offset: tuple[int, int] = (0, 0), frame: int | None = None,
                   source: str = "detector") -> Box:
    """A detector region (in rendered, scaled coordinates) back to stored coordinates, rounded outward."""
    ox, oy = offset
    inv = 1.0 / scale
    return Box(
        int(region.x0 * inv) + ox,
        int(region.y0 * inv) + oy,
        int(-(-region.x1 * inv // 1)) + ox,
        int(-(-region.y1 * inv // 1)) + oy,
        frame,
        source,
    )


def dedupe(boxes: Iterable[Box]) -> list[Box]:
    return sorted(set(boxes))
