"""Finder loading: the inference optimisation changes speed, never results."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import real_finder
from synth import make_color, make_mono

from gateway.pixels.decode import decode
from gateway.pixels.finders import optimize_for_inference, resolve_device
from gateway.pixels.render import render_frame


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(1, 8, 3, 2, 1, bias=False), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
            torch.nn.Conv2d(8, 8, 3, 1, 1, groups=8, bias=False), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
            torch.nn.Conv2d(8, 1, 1))

    def forward(self, x):
        return self.body(x)


class _Finder:
    def __init__(self):
        torch.manual_seed(0)
        self.detector = _Net().eval()
        for m in self.detector.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)


def test_optimisation_is_equivalent_on_a_small_net():
    finder = _Finder()
    original = finder.detector
    x = torch.rand(1, 1, 48, 80)
    with torch.inference_mode():
        before = original(x)
    assert optimize_for_inference(finder, "cpu")
    assert finder.detector is not original
    with torch.inference_mode():
        assert torch.allclose(before, finder.detector(x), atol=1e-5)


def test_optimisation_keeps_the_real_detectors_boxes():
    if real_finder() is None:
        pytest.skip("no shipped detector weights")
    from models.inference import TextFinder

    plain = TextFinder.load(device="cpu")
    fast = TextFinder.load(device="cpu")
    assert optimize_for_inference(fast, "cpu")
    for case in (make_mono(16, True, bits_stored=12), make_color("RGB", rows=200, cols=300)):
        frame = decode(case.ds).frames[0]
        image = render_frame(frame, case.ds, "RGB" if frame.ndim == 3 else None)
        a, b = plain.detect(image), fast.detect(image)
        assert [r.box for r in a] == [r.box for r in b]
        assert np.allclose([r.score for r in a], [r.score for r in b], atol=1e-3)


def test_device_resolution():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda")
    if not torch.cuda.is_available():
        assert resolve_device("cuda") == "cpu"  # falls back rather than failing
