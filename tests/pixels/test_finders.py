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
from models.inference import LOOKS_VERSION
from models.runtime import TorchNet


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
        net = _Net().eval()
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
        self.detector = TorchNet(net)


@pytest.mark.parametrize("onnx", [True, False])
def test_optimisation_is_equivalent_on_a_small_net(onnx, monkeypatch):
    from gateway.pixels import finders

    if not onnx:
        monkeypatch.setattr(finders, "_onnx_runtime", lambda net, threads: None)
    elif pytest.importorskip("onnxruntime") and pytest.importorskip("onnx"):
        pass
    finder = _Finder()
    original = finder.detector
    x = np.random.default_rng(1).random((1, 1, 48, 80), np.float32)
    before = original(x)
    runtime = optimize_for_inference(finder, "cpu")
    assert runtime == ("onnxruntime" if onnx else "torch-fused")
    assert finder.detector is not original
    assert np.allclose(before, finder.detector(x), atol=1e-5)


def test_an_optimisation_that_disagrees_is_not_used(monkeypatch):
    from gateway.pixels import finders

    class Wrong(torch.nn.Module):
        def forward(self, x):
            return torch.zeros(1)

    monkeypatch.setattr(finders, "_onnx_runtime", lambda net, threads: TorchNet(Wrong()))
    monkeypatch.setattr(finders, "_channels_last", lambda net: Wrong())
    finder = _Finder()
    original = finder.detector
    assert optimize_for_inference(finder, "cpu") == "original"
    assert finder.detector is original


def test_onnx_runtime_keeps_the_real_detectors_boxes():
    if real_finder() is None:
        pytest.skip("no shipped detector weights")
    from models.checkpoints import load_detector_module
    from models.inference import DEFAULT_WEIGHTS, TextFinder

    plain = TextFinder.load(device="cpu")
    plain.detector = TorchNet(load_detector_module(DEFAULT_WEIGHTS).eval())  # eager PyTorch, BatchNorm unfolded
    fast = TextFinder.load(device="cpu")
    assert optimize_for_inference(fast, "cpu") == "onnxruntime"
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


def test_stage_loads_the_shipped_finder_itself():
    if real_finder() is None:
        pytest.skip("no shipped detector weights")
    from conftest import run
    from synth import encode

    from gateway.pixels.config import PixelsConfig
    from gateway.pixels.stage import PixelStage

    stage = PixelStage(PixelsConfig.model_validate({"enabled": True, "device": "cpu"}))
    _, ctx = run(stage, encode(make_mono(text=True), "explicit").ds)
    details = ctx.reports[0].details
    assert details["detector_version"].endswith(("(onnxruntime)", "(torch-fused)"))
    assert details["verification"].startswith("passed")


def test_the_rotated_look_is_a_configured_choice_recorded_in_the_version():
    if real_finder() is None:
        pytest.skip("no shipped detector weights")
    from gateway.pixels.config import PixelsConfig
    from gateway.pixels.stage import PixelStage

    plain = PixelStage(PixelsConfig.model_validate({"device": "cpu", "rotated_text": False})).finder
    rotated = PixelStage(PixelsConfig.model_validate({"device": "cpu"})).finder  # on by default
    assert not plain.rotated_look and "+rotated" not in plain.version
    assert rotated.rotated_look and rotated.version.endswith(("+rotated (onnxruntime)", "+rotated (torch-fused)"))


def test_the_second_detector_is_on_unless_configured_off_and_recorded_in_the_version():
    if real_finder() is None:
        pytest.skip("no shipped detector weights")
    from gateway.pixels.config import PixelsConfig
    from gateway.pixels.stage import PixelStage

    default = PixelStage(PixelsConfig.model_validate({"device": "cpu"})).finder
    without = PixelStage(PixelsConfig.model_validate({"device": "cpu", "second_detector": False})).finder
    assert default.second_detector.runtime == "onnxruntime"
    assert f"+{LOOKS_VERSION}+detector-eqview-1.0+" in default.version
    assert without.second_detector is None and "detector-eqview" not in without.version


def test_the_region_verifier_is_on_unless_configured_off_and_recorded_in_the_version():
    if real_finder() is None:
        pytest.skip("no shipped detector weights")
    from gateway.pixels.config import PixelsConfig
    from gateway.pixels.stage import PixelStage

    default = PixelStage(PixelsConfig.model_validate({"device": "cpu"})).finder
    without = PixelStage(PixelsConfig.model_validate({"device": "cpu", "verifier": False})).finder
    assert default.verifier.runtime == "onnxruntime" and "+detector-eqview-1.0+verifier-1.1+rotated (" in default.version
    assert without.verifier is None and "verifier" not in without.version


def test_a_second_detector_missing_from_the_weights_is_an_error_not_a_silent_single_pass(tmp_path):
    import shutil

    from models.inference import DEFAULT_WEIGHTS, TextFinder

    for name in ("detector.pt", "detector.json", "detector.onnx"):
        shutil.copy(DEFAULT_WEIGHTS / name, tmp_path / name)
    with pytest.raises(FileNotFoundError, match="detector_eqview"):
        TextFinder.load(tmp_path, verifier=False)
