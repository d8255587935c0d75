"""The synthetic generator is deterministic and its boxes sit on the drawn text."""

import numpy as np
import pytest

from models.training.synth import SynthConfig, generate

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
    from models.training.synth import fonts

    train, test = set(fonts.split("train")), set(fonts.split("test"))
    if train != test:  # machines without the Debian fonts fall back to one shared list
        assert not train & test


def test_symbol_and_script_fonts_are_not_drawn_with():
    """Symbol and initials fonts map letters to pictures, small capitals draw lower case as capitals: a line
    drawn with one would be labelled with letters it does not show."""
    from pathlib import Path

    from models.training.synth import fonts

    names = {Path(path).name for path in fonts.all_fonts()}
    assert not any(name.startswith(("D050000L", "StandardSymbolsPS", "Z003", "LinBiolinum_K", "LinLibertine_I.",
                                    "Go-Smallcaps")) for name in names)


def test_a_line_its_font_cannot_draw_falls_back_to_a_font_that_can():
    import pytest

    from models.training.synth import fonts

    font = next((f for f in fonts.split("train") if f and not f.endswith(fonts.FALLBACK_NAME)), None)
    if font is None:
        pytest.skip("no fonts installed but Pillow's own")
    assert fonts.for_text(font, "ID 0815") == font
    assert fonts.draws(font, "A") and not fonts.draws(font, "\U0010FFFD")
    assert fonts.for_text(font, "ID \U0010FFFD").endswith(fonts.FALLBACK_NAME)


def test_a_header_bar_is_not_painted_over_lines_already_drawn():
    """Half a line hidden under a bar would stay labelled while the other lines' visible halves would not."""
    from models.training.synth import text
    from models.training.synth.canvas import Canvas
    from models.training.synth.layout import block_header

    style = dict(color=(255, 255, 255), box=None, antialias=True, opacity=1.0, low_contrast=False)
    for seed in range(40):
        rng = np.random.default_rng(seed)
        canvas = Canvas(np.full((200, 300), 0.5, np.float32), color=False)
        top = canvas.place(rng, text.Phrase("DOE^JANE", True, "name"), None, 12, 10, 3, style)
        bottom = canvas.place(rng, text.Phrase("12345678", True, "id"), None, 12, 10, 197, style, anchor="bl")
        before = canvas.img.copy()
        block_header(rng, canvas, None, 12, style)
        for x0, y0, x1, y1 in (top, bottom):
            assert np.array_equal(canvas.img[y0:y1, x0:x1], before[y0:y1, x0:x1])


def _drawn(background, colour: int, box: int | None = None, size: int = 7, words: str = "DOE^JANE"):
    """One line drawn at (10, 10) on `background` (a grey level or an image): the line, the display
    image and the line's ink."""
    from models.training.synth import text
    from models.training.synth.canvas import Canvas

    image = np.broadcast_to(np.asarray(background, np.float32), (40, 160)).copy()
    canvas = Canvas(image, color=False)
    style = dict(color=(colour,) * 3, box=None if box is None else (box,) * 3, antialias=True, opacity=1.0,
                 low_contrast=False)
    assert canvas.place(np.random.default_rng(0), text.Phrase(words, True, "name"), None, size, 10, 10, style)
    return canvas.lines[0], (canvas.img * 255).astype(np.uint8), canvas.inks[0]


def test_text_the_colour_of_the_box_behind_it_is_not_labelled():
    """Small text's box leaves a pixel of margin, so what lies beyond it must not count as the text's background."""
    from models.training.synth.labels import labelled

    assert labelled(*_drawn(0.5, colour=171, box=173)) is None
    assert labelled(*_drawn(0.5, colour=255, box=173)) is not None


def test_a_line_running_from_white_into_black_is_labelled_where_it_shows():
    from models.training.synth.labels import labelled

    white_then_black = np.where(np.arange(160) < 84, 1.0, 0.0)[None, :].repeat(40, 0)
    line, image, ink = _drawn(white_then_black, colour=255, size=14, words="JANE DOE 12345")
    shown = labelled(line, image, ink)
    assert shown is not None and shown.text == "12345"
    assert shown.box[0] >= 84 and shown.box[1:] == line.box[1:]
    assert labelled(*_drawn(1.0, colour=255, size=14)) is None


def test_a_word_half_on_a_grey_of_its_own_is_labelled_for_the_characters_that_show():
    """A date whose first half lies on tissue of its own grey shows only its end: the label says so,
    character by character, and its box holds only what shows."""
    from models.training.synth.labels import labelled

    grey_then_black = np.where(np.arange(160) < 70, 1.0, 0.0)[None, :].repeat(40, 0)
    line, image, ink = _drawn(grey_then_black, colour=255, size=14, words="06-12-1996")
    shown = labelled(line, image, ink)
    assert shown is not None and line.text.endswith(shown.text) and 2 <= len(shown.text) < len(line.text)
    assert 70 - 14 < shown.box[0] < 70 and shown.box[2] == line.box[2]  # from the letter the edge crosses on
    assert [w.text for w in shown.words] == [shown.text]


@pytest.mark.parametrize("turns", [1, 3])
def test_a_turned_one_word_line_is_turned_back_the_way_it_was_drawn(turns):
    """A single word has no word order to tell its way up from, so the line keeps the turns it was drawn
    with; guessed, half of them were read (and learned) upside down."""
    from models.training.synth import text
    from models.training.synth.canvas import Canvas
    from models.training.train_recognizer import upright

    def drawn(rotate):
        canvas = Canvas(np.zeros((160, 160), np.float32), color=False)
        style = dict(color=(255,) * 3, box=None, antialias=True, opacity=1.0, low_contrast=False)
        assert canvas.place(np.random.default_rng(0), text.Phrase("SCOTT^THOMAS", True, "name"), None, 14, 20, 10,
                            style, rotate=rotate)
        line = canvas.lines[0]
        x0, y0, x1, y1 = line.box
        return line, canvas.img[y0:y1, x0:x1, 0]

    flat_line, flat = drawn(0)
    line, turned = drawn(turns)
    assert line.rotated and line.turns == turns and not flat_line.rotated
    assert np.array_equal(upright(turned, line), flat)


def test_scanner_graphics_off_leave_every_sample_as_it_was_and_on_change_it():
    plain = generate(11, 2, CONFIG)
    assert np.array_equal(generate(11, 2, SynthConfig(real_backgrounds=False, graphics=0.0)).image, plain.image)
    drawn = generate(11, 2, SynthConfig(real_backgrounds=False, graphics=1.0))
    assert not np.array_equal(drawn.image, plain.image)


def test_a_rulers_numbers_are_labelled_text_that_is_not_phi():
    from models.training.synth import graphics
    from models.training.synth.canvas import Canvas

    rng = np.random.default_rng(3)
    canvas = Canvas(np.zeros((400, 400, 3), np.float32), color=True)
    while not canvas.lines:  # a ruler with numbers (four in ten have none)
        graphics.ruler(rng, canvas, None)
    assert all(line.text.isdigit() and not line.phi for line in canvas.lines)
    assert canvas.taken.any()  # the ticks are kept free of later text
