"""Overflowed backgrounds are a switch for training and its own evaluation: off by default, invisible
to the default stream, and only on greyscale images."""

import numpy as np

from models.training.synth import SynthConfig, generate
from models.training.synth.generator import overflowed
from tests.models.samples import same_sample

CONFIG = SynthConfig(real_backgrounds=False)


def test_off_by_default_and_the_default_stream_is_untouched():
    assert SynthConfig().overflow == 0.0
    rare = SynthConfig(real_backgrounds=False, overflow=1e-12)
    for i in range(6):
        assert same_sample(generate(11, i, CONFIG), generate(11, i, rare))


def test_values_past_white_start_again_from_black():
    rng = np.random.default_rng(0)
    ramp = np.repeat(np.linspace(0, 1, 400, dtype=np.float32)[None, :, None], 3, axis=2).repeat(50, axis=0)
    out = overflowed(rng, ramp)
    assert out.shape == ramp.shape[:2] and out.min() >= 0 and out.max() < 1
    row = out[25]
    jumps = np.abs(np.diff(row)) > 0.5  # a ramp has none; a wrapped ramp jumps where it crosses white
    assert jumps.sum() >= 1
    # noise straddling the wrap speckles the band's edge: along one column, rows disagree
    column = out[:, int(np.argmax(jumps))]
    assert column.max() - column.min() > 0.5


def test_greyscale_images_only_deterministic_and_labelled():
    cfg = SynthConfig(real_backgrounds=False, overflow=1.0)
    changed = labelled = 0
    for i in range(16):
        plain, a = generate(17, i, CONFIG), generate(17, i, cfg)
        assert same_sample(a, generate(17, i, cfg))
        if not same_sample(a, plain):
            changed += 1
            assert a.image.ndim == 2, "a colour image was overflowed"
        labelled += bool(a.lines)
        for line in a.lines:
            x0, y0, x1, y1 = line.box
            assert 0 <= x0 < x1 <= a.image.shape[1] and 0 <= y0 < y1 <= a.image.shape[0]
    assert changed >= 6 and labelled >= 4
