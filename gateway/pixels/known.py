"""Known-region rules: areas a device model is known to burn text into.

Kept as data in ``pixels.known_regions`` (like the device rules of CTP's DicomPixelAnonymizer
script), matched on the *original* header, and united with the detector's findings. They cover
what a detector might miss on a familiar device layout; they never replace detection.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydicom import Dataset

from gateway.pixels.config import KnownRegionRule
from gateway.pixels.regions import Box


def _contains(value: object, wanted: str | None) -> bool:
    return wanted is None or wanted.lower() in str(value or "").lower()


def matches(rule: KnownRegionRule, ds: Dataset) -> bool:
    return (
        _contains(ds.get("Manufacturer"), rule.manufacturer)
        and _contains(ds.get("ManufacturerModelName"), rule.model)
        and (rule.modality is None or str(ds.get("Modality", "")).upper() == rule.modality.upper())
        and (rule.rows is None or int(ds.get("Rows", 0) or 0) == rule.rows)
        and (rule.columns is None or int(ds.get("Columns", 0) or 0) == rule.columns)
    )


def known_boxes(rules: Sequence[KnownRegionRule], ds: Dataset) -> list[Box]:
    """Boxes (all frames) from every rule that matches ``ds``, clipped to the image."""
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    out = []
    for rule in rules:
        if matches(rule, ds):
            for r in rule.regions:
                box = Box(r.x0, r.y0, r.x1, r.y1, None, "known").clip(rows, cols)
                if box is not None:
                    out.append(box)
    return out
