"""The shipped ONNX export is the shipped detector, and a stale export is never used."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from models.inference import DEFAULT_WEIGHTS, TextFinder, load_detector_module
from models.runtime import ONNX_FILE, SOURCE_KEY, OnnxNet, TorchNet, sha256_of

pytest.importorskip("onnxruntime")


def test_the_shipped_export_records_the_shipped_weights():
    net = OnnxNet((DEFAULT_WEIGHTS / ONNX_FILE).read_bytes())
    assert net.metadata[SOURCE_KEY] == sha256_of(DEFAULT_WEIGHTS / "detector.pt"), \
        "detector.pt changed: run python -m models.export_onnx"


@pytest.mark.parametrize("shape", [(1, 1, 64, 96), (1, 1, 208, 144)])
def test_the_shipped_export_computes_what_the_weights_compute(shape):
    x = np.random.default_rng(0).random(shape, np.float32)
    eager = TorchNet(load_detector_module(DEFAULT_WEIGHTS).eval())(x)
    assert np.allclose(OnnxNet((DEFAULT_WEIGHTS / ONNX_FILE).read_bytes())(x), eager, atol=1e-4)


def test_cpu_finder_runs_the_export():
    assert TextFinder.load(device="cpu").detector.runtime == "onnxruntime"


def test_an_export_of_other_weights_is_not_used(tmp_path):
    for name in ("detector.pt", "detector.json", ONNX_FILE):
        shutil.copy(DEFAULT_WEIGHTS / name, tmp_path / name)
    blob = torch.load(tmp_path / "detector.pt", weights_only=True)
    blob["state_dict"]["head.bias"] = blob["state_dict"]["head.bias"] + 1  # "retrained"
    torch.save(blob, tmp_path / "detector.pt")
    finder = TextFinder.load(tmp_path, device="cpu")
    assert finder.detector.runtime == "torch"


def test_detecting_on_cpu_does_not_import_torch():
    code = (
        "import sys, numpy as np\n"
        "from gateway.pixels.finders import load_finder, resolve_device\n"
        "finder = load_finder('model', None, resolve_device('auto'))\n"
        "image = np.zeros((128, 256), np.uint8); image[50:60, 20:200:6] = 255\n"
        "finder.detect(image)\n"
        "print('torch' in sys.modules, finder.version)\n"
    )
    if not (DEFAULT_WEIGHTS / ONNX_FILE).exists() or TextFinder.load(device="cpu").detector.runtime != "onnxruntime":
        pytest.skip("no usable ONNX export")
    if resolve_device_is_cuda():
        pytest.skip("a GPU machine resolves auto to CUDA")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "False"
    assert out[-1] == "(onnxruntime)"


def resolve_device_is_cuda() -> bool:
    from gateway.pixels.finders import resolve_device

    return resolve_device("auto") == "cuda"
