"""Comparing synthetic samples, and skipping the tests that name images where the pinned fonts are not drawn."""

import os

import numpy as np
import pytest

from models.training.synth import fonts, pinned


def same_sample(a, b) -> bool:
    """The same image, stored pixels and labels."""
    return (np.array_equal(a.image, b.image) and np.array_equal(a.pixels, b.pixels)
            and [(l.box, l.text, l.phi) for l in a.lines] == [(l.box, l.text, l.phi) for l in b.lines])


def why_not_pinned() -> str | None:
    """Why the generator does not draw the pinned fonts here (None: it does).

    A test that names an image ("image 38 of seed 1000 has ten lines under 6 px") holds only for the pinned
    fonts; elsewhere it would fail for want of the fonts, not of the code, so it skips with this reason."""
    if os.environ.get("SYNTH_FONTS") == "builtin":
        return "SYNTH_FONTS=builtin: drawn with Pillow's built-in font, not the pinned fonts"
    found = pinned.look(tuple(fonts.FONT_DIRS))
    if found.complete:
        return None
    packages = sorted({f.package for f in found.missing + found.different})
    return (f"the pinned fonts (models/training/synth/fonts.json) are not all here: {len(found.missing)} missing, "
            f"{len(found.different)} of another version, from {', '.join(packages)} "
            "(deploy/setup.sh --test installs them)")


#: For tests that hold only for the images the pinned fonts draw.
needs_pinned_fonts = pytest.mark.skipif(why_not_pinned() is not None, reason=why_not_pinned() or "")
