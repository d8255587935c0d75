"""Comparing synthetic samples, for the tests of the generator's training-only switches."""

import numpy as np


def same_sample(a, b) -> bool:
    """The same image, stored pixels and labels."""
    return (np.array_equal(a.image, b.image) and np.array_equal(a.pixels, b.pixels)
            and [(l.box, l.text, l.phi) for l in a.lines] == [(l.box, l.text, l.phi) for l in b.lines])
