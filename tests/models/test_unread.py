"""The last word on a region: what neither the verifier nor the recogniser takes for text is set aside."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from models.looks.unread import UNREAD_MAX_HEIGHT, keep_read
from models.regions import TextRegion

IMAGE = np.random.default_rng(0).integers(0, 255, (200, 300), dtype=np.uint8)
TICKS = TextRegion(10, 20, 120, 32, 0.95)


def _finder(logit: float, text: str, confidence: float):
    """A finder whose verifier answers ``logit`` for every region and whose recogniser reads ``text``."""
    return SimpleNamespace(verifier=lambda x: np.full((len(x), 1), logit, np.float32), recognizer=object(),
                           readings=lambda image, regions: [(text, confidence)] * len(regions))


def test_a_region_both_networks_doubt_is_set_aside():
    assert keep_read(_finder(-9.0, "-", 0.2), IMAGE, [TICKS]) == []


def test_a_region_the_recogniser_reads_stays_even_when_the_verifier_doubts_it():
    assert keep_read(_finder(-9.0, "ID 4471", 0.7), IMAGE, [TICKS]) == [TICKS]


def test_a_region_the_verifier_believes_stays_when_it_reads_as_long_as_a_line():
    assert keep_read(_finder(2.0, "Sn3hi i1 9ot", 0.2), IMAGE, [TICKS]) == [TICKS]  # misread, but a line's length


def test_a_dotted_line_the_verifier_believes_but_that_reads_as_one_letter_is_set_aside():
    assert keep_read(_finder(2.0, "S", 0.2), IMAGE, [TICKS]) == []


def test_a_region_taller_than_a_line_stays_a_small_line_inside_it_would_not_read():
    tall = TextRegion(10, 20, 120, 21 + UNREAD_MAX_HEIGHT, 0.95)
    assert keep_read(_finder(-9.0, "", 0.0), IMAGE, [tall]) == [tall]


def test_without_a_verifier_or_a_recogniser_every_region_stays():
    assert keep_read(SimpleNamespace(verifier=None, recognizer=object()), IMAGE, [TICKS]) == [TICKS]
    assert keep_read(SimpleNamespace(verifier=lambda x: x, recognizer=None), IMAGE, [TICKS]) == [TICKS]
