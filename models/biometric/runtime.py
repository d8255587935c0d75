"""The shipped PriCheXy-Net generator under ONNX Runtime: a rendering in, a smoothed flow out.

``prichexy_mu{MU}.onnx`` (in ``models/weights/``) holds ``models.biometric.networks.FlowGenerator``
(the U-Net and the Gaussian smoothing), exported by ``python -m models.training.biometric.export``
with its weights stored as fp16 and cast to fp32 when the session starts. Beside it,
``prichexy_mu{MU}.json`` records the version, the input size, the mu it was trained for and the
export's SHA-256; a file whose digest does not match is refused. A worker never imports PyTorch
for it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"


def weights_name(mu: float) -> str:
    """``prichexy_mu0.01`` for mu = 0.01 (the repr of the float, as the config writes it)."""
    return f"prichexy_mu{mu!r}"


class WeightsMismatch(Exception):
    """The export is not the one its JSON describes."""


@dataclass
class FlowModel:
    """One generator: ``flow(image01)`` for a (H, W) rendering in [0, 1]."""

    session: object
    size: int
    mu: float
    version: str
    runtime: str = "onnxruntime"

    @classmethod
    def load(cls, mu: float, weights_dir: Path | None = None, threads: int = 1) -> FlowModel:
        """Raises FileNotFoundError (no weights for this mu), ImportError (no ONNX Runtime) or
        :class:`WeightsMismatch`."""
        import onnxruntime as ort

        root = Path(weights_dir) if weights_dir else WEIGHTS
        path = root / f"{weights_name(mu)}.onnx"
        meta = json.loads(path.with_suffix(".json").read_text())
        model = path.read_bytes()
        if hashlib.sha256(model).hexdigest() != meta.get("onnx_sha256"):
            raise WeightsMismatch(path.name)
        if float(meta["mu"]) != mu:
            raise WeightsMismatch(path.name)
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(0, threads)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        return cls(session, int(meta["size"]), mu, str(meta["version"]))

    def flow(self, image01: np.ndarray) -> np.ndarray:
        """The smoothed flow (2, size, size) of a rendering, resized to the network's input."""
        x = np.ascontiguousarray(image01, dtype=np.float32)
        if x.shape != (self.size, self.size):
            x = cv2.resize(x, (self.size, self.size), interpolation=cv2.INTER_AREA)
        out = self.session.run(None, {"x": x[None, None]})[0]
        return np.asarray(out[0], dtype=np.float32)
