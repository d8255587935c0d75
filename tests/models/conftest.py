"""Where the pinned fonts are not all here, the tests of models/ draw with Pillow's built-in font.

The generator refuses to draw from fonts other than the pinned ones (``models.training.synth.pinned``); the
tests that hold for any font (boxes inside the image, labels, determinism) still run here with the built-in
font, asked for by SYNTH_FONTS, and those that name images skip (``samples.needs_pinned_fonts``). So the same
command passes, or skips with a reason, on any machine.
"""

import pytest

from tests.models.samples import why_not_pinned


@pytest.fixture(scope="package", autouse=True)
def _builtin_font_unless_pinned():
    if why_not_pinned() is None:
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SYNTH_FONTS", "builtin")
        yield
