"""Running the networks: ONNX Runtime from the shipped exports, or PyTorch.

Both runners take a float32 NCHW array and return the network's output as an array, so the code
around them (tiling, boxes, line batching, decoding) is the same whichever runs. A CPU worker uses
``detector.onnx`` and ``recognizer.onnx``, exported from the ``.pt`` weights by
``python -m models.training.export_onnx``: ONNX Runtime runs the detector's depthwise convolutions and the
recogniser's LSTM in well under half of eager PyTorch's time, and a worker never imports PyTorch
(about two seconds of every start). An export records the SHA-256 of the weights it came from and
is used only while they match, so weights retrained without a new export are run by PyTorch
rather than by a stale network.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np

#: Dynamic axes of each network's export: the detector takes batches of any image size, the
#: recogniser any number of lines of any width, the verifier any number of regions.
DYNAMIC_AXES = {
    "detector": {"x": {0: "n", 2: "h", 3: "w"}, "y": {0: "n", 2: "oh", 3: "ow"}},
    "recognizer": {"x": {0: "n", 3: "w"}, "y": {0: "n", 1: "t"}},
    "verifier": {"x": {0: "n"}, "y": {0: "n"}},
}
PROBES = {"detector": (1, 1, 64, 96), "recognizer": (2, 1, 32, 96), "verifier": (2, 1, 32, 256)}
#: Metadata key in the ONNX file naming the weights it was exported from.
SOURCE_KEY = "source_sha256"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class OnnxNet:
    """An ONNX model of the detector in an ONNX Runtime CPU session."""

    runtime = "onnxruntime"
    #: Images per call where several of one size wait (``models.looks.tiling``). A GPU needs
    #: batches to keep busy; one CPU thread is faster one image at a time, the activations of
    #: one staying in its caches: 7.9 ms per 512² image alone against 10.8 ms in a batch of 6,
    #: with the same outputs to the bit.
    batch = 1

    def __init__(self, model: bytes, threads: int = 1):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(0, threads)  # 0: ONNX Runtime's default
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"x": np.ascontiguousarray(x, dtype=np.float32)})[0]

    @classmethod
    def from_weights(cls, root: Path, name: str, threads: int = 1) -> OnnxNet | None:
        """``name``.onnx when it exists, ONNX Runtime is installed, and it matches ``name``.pt."""
        path, weights = Path(root) / f"{name}.onnx", Path(root) / f"{name}.pt"
        if not path.exists() or not weights.exists():
            return None
        try:
            net = cls(path.read_bytes(), threads)
        except ImportError:
            return None
        return net if net.metadata.get(SOURCE_KEY) == sha256_of(weights) else None


class TorchNet:
    """A PyTorch module behind the same array-in, array-out call."""

    runtime = "torch"

    def __init__(self, module: Any, device: str = "cpu"):
        self.module = module
        self.device = device
        if device == "cpu":
            self.batch = 1  # see OnnxNet.batch; on a GPU, the caller's batches

    def __call__(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)).float().cpu().numpy()


def export_onnx(module: Any, source_sha256: str | None = None, kind: str = "detector") -> bytes:
    """The module as an ONNX model with the free axes of its ``kind`` (and its weights' hash)."""
    import warnings

    import onnx
    import torch

    buf = io.BytesIO()
    probe = torch.rand(*PROBES[kind])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, probe, buf, input_names=["x"], output_names=["y"], opset_version=17,
                          dynamic_axes=DYNAMIC_AXES[kind], dynamo=False)
    model = onnx.load_from_string(buf.getvalue())
    if source_sha256:
        entry = model.metadata_props.add()
        entry.key, entry.value = SOURCE_KEY, source_sha256
    return model.SerializeToString()
