"""The shipped ONNX exports are the shipped networks, and a stale export is never used."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from models.checkpoints import load_detector_module, load_recognizer_module, load_verifier_module
from models.inference import DEFAULT_WEIGHTS, TextFinder
from models.runtime import SOURCE_KEY, OnnxNet, TorchNet, sha256_of

pytest.importorskip("onnxruntime")

LOADERS = {"detector": load_detector_module, "detector_eqview": lambda root: load_detector_module(root, "detector_eqview"),
           "recognizer": load_recognizer_module, "verifier": load_verifier_module}
DETECTOR_INPUTS = [(1, 1, 64, 96), (1, 1, 208, 144), (3, 1, 64, 96)]
INPUTS = {"detector": DETECTOR_INPUTS, "detector_eqview": DETECTOR_INPUTS, "recognizer": [(1, 1, 32, 324), (5, 1, 32, 72)],
          "verifier": [(1, 1, 32, 256), (4, 1, 32, 256)]}


@pytest.mark.parametrize("name", LOADERS)
def test_each_export_records_the_weights_it_came_from(name):
    net = OnnxNet((DEFAULT_WEIGHTS / f"{name}.onnx").read_bytes())
    assert net.metadata[SOURCE_KEY] == sha256_of(DEFAULT_WEIGHTS / f"{name}.pt"), \
        f"{name}.pt changed: run python -m models.training.export_onnx"


@pytest.mark.parametrize("name,shape", [(n, s) for n, shapes in INPUTS.items() for s in shapes])
def test_each_export_computes_what_its_weights_compute(name, shape):
    x = np.random.default_rng(0).random(shape, np.float32)
    eager = TorchNet(LOADERS[name](DEFAULT_WEIGHTS).eval())(x)
    assert np.allclose(OnnxNet((DEFAULT_WEIGHTS / f"{name}.onnx").read_bytes())(x), eager, atol=1e-4)


def test_a_cpu_finder_runs_both_exports():
    finder = TextFinder.load(device="cpu")
    assert finder.detector.runtime == "onnxruntime"
    assert finder.recognizer.runtime == "onnxruntime"


def test_an_export_of_other_weights_is_not_used(tmp_path):
    for name in ("detector.pt", "detector.json", "detector.onnx"):
        shutil.copy(DEFAULT_WEIGHTS / name, tmp_path / name)
    blob = torch.load(tmp_path / "detector.pt", weights_only=True)
    blob["state_dict"]["head.bias"] = blob["state_dict"]["head.bias"] + 1  # "retrained"
    torch.save(blob, tmp_path / "detector.pt")
    assert TextFinder.load(tmp_path, device="cpu", second_detector=False, verifier=False).detector.runtime == "torch"


def test_finding_and_reading_on_cpu_does_not_import_torch():
    from gateway.pixels.finders import resolve_device

    if resolve_device("auto") == "cuda":
        pytest.skip("a GPU machine resolves auto to CUDA")
    code = (
        "import sys, numpy as np\n"
        "from gateway.pixels.finders import load_finder, resolve_device\n"
        "finder = load_finder('model', None, resolve_device('auto'))\n"
        "image = np.zeros((128, 256), np.uint8); image[50:60, 20:200:6] = 255\n"
        "finder.read(image, finder.detect(image))\n"
        "print('torch' in sys.modules, finder.version)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "False"
    assert out[-1] == "(onnxruntime)"


class _Recording:
    """A detector that answers zeros and records the batch sizes it was called with."""

    def __init__(self, batch: int | None = None):
        self.sizes: list[int] = []
        if batch is not None:
            self.batch = batch

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.sizes.append(x.shape[0])
        return np.zeros((x.shape[0], 1, x.shape[2] // 2, x.shape[3] // 2), np.float32)


def test_a_cpu_network_sees_same_sized_images_one_at_a_time_and_a_gpu_one_in_batches():
    """One CPU thread runs the detector faster image by image (7.9 against 10.8 ms per 512²
    image in a batch of 6), and its answers are the same to the bit."""
    from models.looks.tiling import DETECT_BATCH, run_batched

    images = [np.full((64, 96), k, np.uint8) for k in range(20)]
    cpu, gpu = _Recording(batch=1), _Recording()
    run_batched(cpu, images)
    run_batched(gpu, images)
    assert cpu.sizes == [1] * 20 and gpu.sizes == [DETECT_BATCH, 20 - DETECT_BATCH]
    assert OnnxNet.batch == 1 and TorchNet(torch.nn.Identity(), "cpu").batch == 1
    assert not hasattr(TorchNet(torch.nn.Identity(), "cuda"), "batch")

    net = OnnxNet((DEFAULT_WEIGHTS / "detector.onnx").read_bytes())
    x = np.random.default_rng(0).random((6, 1, 96, 128), np.float32)
    assert np.array_equal(net(x), np.concatenate([net(x[k:k + 1]) for k in range(6)]))
