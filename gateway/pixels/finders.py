"""Where text finders come from: the shipped model, or rapidocr as an alternative.

Both satisfy the same small interface as ``models.inference.TextFinder`` (detect, detect_batch,
read, version), so the rest of the stage never knows which one it has. Tests inject their own.
Loading is lazy and happens once per stage: a worker that never sees pixel data never pays it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class Region:
    """Same fields as models.inference.TextRegion, for finders that are not the shipped model."""

    x0: int
    y0: int
    x1: int
    y1: int
    score: float


class TextFinderLike(Protocol):
    version: str

    def detect(self, image: np.ndarray) -> list[Any]: ...

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Any]]: ...

    def read(self, image: np.ndarray, regions: list[Any]) -> list[str]: ...


def resolve_device(device: str) -> str:
    """``auto`` means CUDA when torch sees one, else CPU; ``cuda`` without one falls back too."""
    if device == "cpu":
        return "cpu"
    try:
        import torch

        if torch.cuda.is_available():
            return "cuda"
    except Exception:  # noqa: BLE001, S110 - a broken CUDA setup means CPU
        pass
    if device == "cuda":
        import logging

        logging.getLogger(__name__).warning("pixels: CUDA requested but not available; running on CPU")
    return "cpu"


class RapidOcrFinder:
    """rapidocr (PP-OCR ONNX models bundled in the wheel) behind the TextFinder interface."""

    def __init__(self) -> None:
        import logging

        from rapidocr import RapidOCR

        logging.getLogger("RapidOCR").setLevel(logging.WARNING)
        self._engine = RapidOCR()
        try:
            from rapidocr import __version__ as v  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - the version is informative only
            v = "unknown"
        self.version = f"rapidocr-{v}"

    @staticmethod
    def _bgr(image: np.ndarray) -> np.ndarray:
        if image.ndim == 2:
            return np.ascontiguousarray(np.repeat(image[..., None], 3, axis=2))
        return np.ascontiguousarray(image[..., ::-1])

    def detect(self, image: np.ndarray) -> list[Region]:
        out = self._engine(self._bgr(image), use_det=True, use_cls=False, use_rec=False)
        boxes = getattr(out, "boxes", None)
        scores = getattr(out, "scores", None)
        if boxes is None:
            return []
        regions = []
        for i, quad in enumerate(np.asarray(boxes)):
            xs, ys = quad[:, 0], quad[:, 1]
            score = float(scores[i]) if scores is not None and i < len(scores) else 1.0
            regions.append(Region(int(np.floor(xs.min())), int(np.floor(ys.min())),
                                  int(np.ceil(xs.max())) + 1, int(np.ceil(ys.max())) + 1, score))
        return regions

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Region]]:
        return [self.detect(im) for im in images]

    def read(self, image: np.ndarray, regions: list[Any]) -> list[str]:
        texts = []
        for r in regions:
            crop = image[max(0, r.y0):r.y1, max(0, r.x0):r.x1]
            if crop.size == 0:
                texts.append("")
                continue
            out = self._engine(self._bgr(crop), use_det=False, use_cls=False, use_rec=True)
            txts = getattr(out, "txts", None) or ()
            texts.append(" ".join(t for t in txts if t))
        return texts


def _channels_last(net: Any) -> Any:
    import torch

    class ChannelsLast(torch.nn.Module):
        """NHWC in, NCHW out: oneDNN runs depthwise convolutions much faster channels-last."""

        def __init__(self, inner: torch.nn.Module):
            super().__init__()
            self.inner = inner.to(memory_format=torch.channels_last)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x.contiguous(memory_format=torch.channels_last)).contiguous()

    return ChannelsLast(net).eval()


def _onnx_runtime(net: Any, threads: int) -> Any | None:
    """The network exported to ONNX (in memory) and run by ONNX Runtime, or None if unavailable.

    For this detector's depthwise convolutions ONNX Runtime on one CPU thread takes well under
    half of eager PyTorch's time. Needs the optional ``onnx`` and ``onnxruntime`` packages.
    """
    try:
        import io
        import warnings

        import onnxruntime as ort
        import torch
    except ImportError:
        return None
    buf = io.BytesIO()
    probe = torch.rand(1, 1, 64, 96)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, probe, buf, input_names=["x"], output_names=["y"], opset_version=17,
                          dynamic_axes={"x": {2: "h", 3: "w"}, "y": {2: "oh", 3: "ow"}}, dynamo=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(0, threads)  # 0: ONNX Runtime's default
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(buf.getvalue(), options, providers=["CPUExecutionProvider"])

    class OrtNet(torch.nn.Module):
        """Called like the torch network: NCHW float tensor in, logits tensor out."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = session.run(None, {"x": x.detach().cpu().numpy().astype(np.float32, copy=False)})[0]
            return torch.from_numpy(y)

    return OrtNet().eval()


def optimize_for_inference(finder: Any, device: str = "cpu", threads: int = 1) -> str:
    """Make the finder's detector network cheaper to run, without changing what it computes.

    The detector is nearly all of what an instance without text costs. On CPU the network is
    run by ONNX Runtime when ``onnx`` and ``onnxruntime`` are installed (about 2.5x less time
    than eager PyTorch on this project's benchmark); otherwise BatchNorm is folded into the
    convolutions and the network runs channels-last (about 1.8x). Every candidate is checked
    against the original network on random inputs of two sizes and used only if it agrees.
    Returns which network is in use: "onnxruntime", "torch-fused", or "original".
    """
    try:
        import torch
        from torch.fx.experimental.optimization import fuse
    except ImportError:
        return "original"
    net = getattr(finder, "detector", None)
    if not isinstance(net, torch.nn.Module) or net.training:
        return "original"
    param = next(net.parameters(), None)
    on = param.device if param is not None else torch.device("cpu")
    probes = [torch.rand(1, 1, 64, 96, device=on), torch.rand(1, 1, 80, 48, device=on)]

    def agrees(candidate: Any) -> bool:
        with torch.inference_mode():
            return all(torch.allclose(net(p).cpu(), candidate(p).cpu(), atol=1e-4, rtol=1e-4) for p in probes)

    candidates: list[tuple[str, Any]] = []
    if device == "cpu":
        candidates.append(("onnxruntime", lambda: _onnx_runtime(net, threads)))
    candidates.append(("torch-fused", lambda: _channels_last(fuse(net)) if device == "cpu" else fuse(net)))
    for name, build in candidates:
        try:
            candidate = build()
            if candidate is not None and agrees(candidate):
                finder.detector = candidate
                return name
        except Exception:  # noqa: BLE001, S112 - an optimisation that fails is simply not used
            continue
    return "original"


def load_finder(kind: str, weights_dir: Path | None, device: str, threads: int = 1) -> TextFinderLike:
    """Load the configured finder; errors propagate so the stage can quarantine, not pass."""
    if kind == "rapidocr":
        return RapidOcrFinder()
    from models.inference import TextFinder

    finder = TextFinder.load(weights_dir=weights_dir, device=device)
    runtime = optimize_for_inference(finder, device, threads)
    finder.version = f"{finder.version} ({runtime})"
    return finder
