"""Synthetic burned-in text: deterministic, on-the-fly images with exact line/word boxes and PHI labels.

`generate(seed, index)` returns a `Sample`; the same (seed, index, config) always yields the same sample.
"""

from models.training.synth.canvas import Line, Word
from models.training.synth.generator import Sample, SynthConfig, generate

__all__ = ["Line", "Sample", "SynthConfig", "Word", "generate"]
