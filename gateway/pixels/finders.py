"""Where text finders come from: the shipped model, or rapidocr as an alternative.

Both satisfy the same small interface as ``models.inference.TextFinder`` (detect, detect_batch,
readings, version), so the rest of the stage never knows which one it has. Tests inject their own.
Loading is lazy and happens once per stage: a worker that never sees pixel data never pays it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from models.regions import TextRegion


class TextFinderLike(Protocol):
    """What the stage needs of a finder; every finder answers in ``models.regions.TextRegion``."""

    version: str

    def detect(self, image: np.ndarray) -> list[TextRegion]: ...

    def detect_batch(self, images: list[np.ndarray]) -> list[list[TextRegion]]: ...

    def readings(self, image: np.ndarray, regions: list[TextRegion]) -> list[tuple[str, float]]:
        """(text, confidence in [0, 1]) of each region; ("", 0.0) where nothing is read."""
        ...


def _nvidia_driver_loaded() -> bool:
    """Whether an NVIDIA kernel driver is present: without one no CUDA device can exist, and a
    CPU worker need not import PyTorch (two seconds of its start) to find that out."""
    return Path("/proc/driver/nvidia/version").exists() or Path("/dev/nvidia0").exists()


def resolve_device(device: str) -> str:
    """``auto`` means CUDA when torch sees one, else CPU; ``cuda`` without one falls back too."""
    if device == "cpu":
        return "cpu"
    if _nvidia_driver_loaded():
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

    #: It reads what it finds: verification may set aside what reads as nothing (`gateway.pixels.verify`).
    reads_text = True

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

    def detect(self, image: np.ndarray) -> list[TextRegion]:
        out = self._engine(self._bgr(image), use_det=True, use_cls=False, use_rec=False)
        boxes = getattr(out, "boxes", None)
        scores = getattr(out, "scores", None)
        if boxes is None:
            return []
        regions = []
        for i, quad in enumerate(np.asarray(boxes)):
            xs, ys = quad[:, 0], quad[:, 1]
            score = float(scores[i]) if scores is not None and i < len(scores) else 1.0
            regions.append(TextRegion(int(np.floor(xs.min())), int(np.floor(ys.min())),
                                  int(np.ceil(xs.max())) + 1, int(np.ceil(ys.max())) + 1, score))
        return regions

    def detect_batch(self, images: list[np.ndarray]) -> list[list[TextRegion]]:
        return [self.detect(im) for im in images]

    def readings(self, image: np.ndarray, regions: list[TextRegion]) -> list[tuple[str, float]]:
        out = []
        for r in regions:
            crop = image[max(0, r.y0):r.y1, max(0, r.x0):r.x1]
            if crop.size == 0:
                out.append(("", 0.0))
                continue
            result = self._engine(self._bgr(crop), use_det=False, use_cls=False, use_rec=True)
            texts = [t for t in (getattr(result, "txts", None) or ()) if t]
            scores = [float(s) for s in (getattr(result, "scores", None) or ())][:len(texts)]
            out.append((" ".join(texts), min(scores, default=0.0) if texts else 0.0))
        return out


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
    """The network exported to ONNX (in memory) and run by ONNX Runtime, or None if unavailable."""
    try:
        from models.runtime import OnnxNet, export_onnx

        return OnnxNet(export_onnx(net), threads)
    except ImportError:
        return None


def optimize_for_inference(finder: Any, device: str = "cpu", threads: int = 1) -> str:
    """Make the finder's detector network cheaper to run, without changing what it computes.

    The detector is nearly all of what an instance without text costs. The shipped weights come
    with an ONNX export that ``TextFinder.load`` already runs with ONNX Runtime on CPU (checked
    against the weights' hash). A detector still run by PyTorch (weights retrained without a new
    export, or a GPU) is exported in memory for ONNX Runtime on CPU (about 2.5x less time than
    eager PyTorch), or else run with BatchNorm folded and channels-last (about 1.8x). Every
    candidate is checked against the original network on random inputs of two sizes and used
    only if it agrees. Returns which network is in use: "onnxruntime", "torch-fused", or "original".
    """
    net = getattr(finder, "detector", None)
    if getattr(net, "runtime", None) == "onnxruntime":
        return "onnxruntime"
    module = getattr(net, "module", None)
    try:
        import torch
        from torch.fx.experimental.optimization import fuse

        from models.runtime import TorchNet
    except ImportError:
        return "original"
    if not isinstance(module, torch.nn.Module) or module.training:
        return "original"
    rng = np.random.default_rng(0)
    probes = [rng.random((1, 1, 64, 96), np.float32), rng.random((1, 1, 80, 48), np.float32)]

    def agrees(candidate: Any) -> bool:
        return all(np.allclose(net(p), candidate(p), atol=1e-4, rtol=1e-4) for p in probes)

    candidates: list[tuple[str, Any]] = []
    if device == "cpu":
        candidates.append(("onnxruntime", lambda: _onnx_runtime(module, threads)))
    candidates.append(("torch-fused", lambda: TorchNet(_channels_last(fuse(module)) if device == "cpu" else fuse(module), net.device)))
    for name, build in candidates:
        try:
            candidate = build()
            if candidate is not None and agrees(candidate):
                finder.detector = candidate
                return name
        except Exception:  # noqa: BLE001, S112 - an optimisation that fails is simply not used
            continue
    return "original"


def load_finder(kind: str, weights_dir: Path | None, device: str, threads: int = 1,
                rotated_text: bool = False, second_detector: bool = True, verifier: bool = True) -> TextFinderLike:
    """Load the configured finder; errors propagate so the stage can quarantine, not pass."""
    if kind == "rapidocr":
        return RapidOcrFinder()
    from models.inference import TextFinder

    finder = TextFinder.load(weights_dir=weights_dir, device=device, threads=threads if device == "cpu" else None,
                             second_detector=second_detector, verifier=verifier)
    if rotated_text:
        finder = finder.with_rotated_look()
    runtime = optimize_for_inference(finder, device, threads)
    finder.version = f"{finder.version} ({runtime})"
    return finder
