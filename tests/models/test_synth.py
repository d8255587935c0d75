"""The synthetic generator is deterministic and its boxes sit on the drawn text."""

import numpy as np

from models.synth import SynthConfig, generate

CONFIG = SynthConfig(real_backgrounds=False)


def test_same_seed_same_sample():
    a, b = generate(5, 3, CONFIG), generate(5, 3, CONFIG)
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.pixels, b.pixels)
    assert [(l.box, l.text, l.phi) for l in a.lines] == [(l.box, l.text, l.phi) for l in b.lines]


def test_different_index_differs():
    a, b = generate(5, 3, CONFIG), generate(5, 4, CONFIG)
    assert a.image.shape != b.image.shape or not np.array_equal(a.image, b.image)


def test_boxes_inside_image_and_labelled():
    seen_phi = seen_safe = False
    for i in range(12):
        s = generate(9, i, CONFIG)
        h, w = s.image.shape[:2]
        assert s.image.dtype == np.uint8
        for line in s.lines:
            x0, y0, x1, y1 = line.box
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
            assert line.text.strip()
            for word in line.words:
                assert x0 - 1 <= word.box[0] and word.box[2] <= x1 + 1
            seen_phi |= line.phi
            seen_safe |= not line.phi
    assert seen_phi and seen_safe


def test_test_split_uses_held_out_fonts():
    from models.synth import fonts

    train, test = set(fonts.split("train")), set(fonts.split("test"))
    if train != test:  # machines without the Debian fonts fall back to one shared list
        assert not train & test


def test_symbol_and_script_fonts_are_not_drawn_with():
    """Symbol and initials fonts map letters to pictures, small capitals draw lower case as capitals: a line
    drawn with one would be labelled with letters it does not show."""
    from pathlib import Path

    from models.synth import fonts

    names = {Path(path).name for path in fonts.all_fonts()}
    assert not any(name.startswith(("D050000L", "StandardSymbolsPS", "Z003", "LinBiolinum_K", "LinLibertine_I.",
                                    "Go-Smallcaps")) for name in names)


def test_a_line_its_font_cannot_draw_falls_back_to_a_font_that_can():
    import pytest

    from models.synth import fonts

    font = next((f for f in fonts.split("train") if f and not f.endswith(fonts.FALLBACK_NAME)), None)
    if font is None:
        pytest.skip("no fonts installed but Pillow's own")
    assert fonts.for_text(font, "ID 0815") == font
    assert fonts.draws(font, "A") and not fonts.draws(font, "\U0010FFFD")
    assert fonts.for_text(font, "ID \U0010FFFD").endswith(fonts.FALLBACK_NAME)
