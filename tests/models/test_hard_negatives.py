"""Hard negatives are a training-only switch: off by default and invisible to the default stream."""

import numpy as np
import pytest

from models.training.synth import SynthConfig, generate
from models.training.synth import hard_negatives
from tests.models.samples import same_sample

CONFIG = SynthConfig(real_backgrounds=False)


def test_off_by_default():
    assert SynthConfig().hard_negatives == 0.0


def test_switch_does_not_disturb_the_default_stream():
    """Enabled but never firing: every sample equals the default one (own random generator)."""
    rare = SynthConfig(real_backgrounds=False, hard_negatives=1e-12)
    for i in range(6):
        assert same_sample(generate(11, i, CONFIG), generate(11, i, rare))
    test_rare = SynthConfig(font_split="test", real_backgrounds=False, hard_negatives=1e-12)
    assert same_sample(generate(1000, 0, SynthConfig(font_split="test", real_backgrounds=False)), generate(1000, 0, test_rare))


def test_hard_negative_samples_are_deterministic_and_labelled():
    cfg = SynthConfig(real_backgrounds=False, hard_negatives=1.0)
    changed = labelled = 0
    for i in range(10):
        a, b = generate(13, i, cfg), generate(13, i, cfg)
        assert same_sample(a, b)
        changed += not same_sample(a, generate(13, i, CONFIG))
        h, w = a.image.shape[:2]
        for line in a.lines:
            x0, y0, x1, y1 = line.box
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h and line.text.strip()
        labelled += bool(a.lines)
    assert changed >= 8 and labelled >= 3


@pytest.mark.parametrize("name", sorted(hard_negatives.RECIPES))
def test_recipes_keep_shape_and_range(name):
    rng = np.random.default_rng(3)
    fn = hard_negatives.RECIPES[name][0]
    for ph, pw in ((4, 4), (5, 300), (300, 6), (37, 91), (200, 150)):
        out = fn(rng, ph, pw, rng.uniform(0, 1, (ph, pw, 3)).astype(np.float32))
        assert out.shape == (ph, pw, 3)
        assert np.isfinite(out).all() and out.min() >= -1e-6 and out.max() <= 1 + 1e-6


def test_apply_and_test_card():
    rng = np.random.default_rng(4)
    for h, w in ((64, 64), (256, 700), (900, 300)):
        img = rng.uniform(0, 1, (h, w, 3)).astype(np.float32)
        keep_free = hard_negatives.apply(rng, img)
        assert img.shape == (h, w, 3) and 0 <= img.min() and img.max() <= 1
        assert keep_free is None or keep_free.shape == (h, w)
        assert hard_negatives.test_card(rng, h, w).shape == (h, w, 3)


def test_monochrome_images_get_no_glints():
    """Specks of light on a grey frame look like 4-5 px text; they are kept for colour photos."""
    rng = np.random.default_rng(5)
    grey = {hard_negatives._pick(rng, colour=False) for _ in range(400)}
    colour = {hard_negatives._pick(rng, colour=True) for _ in range(400)}
    assert hard_negatives.COLOUR_ONLY <= colour
    assert not grey & hard_negatives.COLOUR_ONLY and len(grey) == len(hard_negatives.RECIPES) - len(hard_negatives.COLOUR_ONLY)
