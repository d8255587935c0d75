"""The weights directory: checkpoints, their versions, and the PyTorch modules built from them.

Checkpoints are kept in half precision on disk and computed in float32; each network has a JSON card
beside it whose version the audit records. PyTorch is imported only inside these functions, so a
CPU worker that runs the ONNX exports never loads it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable


def fuse_batchnorm(model: Any) -> Any:
    """Fold every Conv2d -> BatchNorm2d pair into the conv (eval only): ~15% faster on CPU."""
    import torch
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for module in model.modules():
        if isinstance(module, torch.nn.Sequential):
            children = list(module.children())
            for i in range(len(children) - 1):
                conv, bn = children[i], children[i + 1]
                if isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d):
                    module[i] = fuse_conv_bn_eval(conv, bn)
                    module[i + 1] = torch.nn.Identity()
    return model


def torch_with_threads(threads: int | None):
    """PyTorch, imported on demand, with its intra-op thread count set when one is given."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    return torch


def load_checkpoint(path: Path):
    """A ``.pt`` file's state dict in float32 and its meta: weights are kept in half precision on disk
    for size, and both inference and a warm start compute in float32."""
    import torch

    blob = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()}
    return state, blob.get("meta", {})


def weights_version(root: Path, name: str, fallback: str) -> str:
    """A model's version from its JSON card (no PyTorch needed to read it)."""
    try:
        return json.loads((root / f"{name}.json").read_text()).get("version", fallback)
    except (OSError, ValueError):
        return fallback


def load_detector_module(root: Path, name: str = "detector"):
    from models.detector import TextDetector

    return _built(Path(root) / f"{name}.pt", lambda meta: TextDetector(meta.get("width", 16)))


def load_recognizer_module(root: Path):
    from models.recognizer import CRNN

    return _built(Path(root) / "recognizer.pt", lambda meta: CRNN(meta.get("hidden", 96), width=meta.get("width", 16)))


def load_verifier_module(root: Path, name: str = "verifier"):
    from models.verifier import RegionVerifier

    return _built(Path(root) / f"{name}.pt", lambda meta: RegionVerifier(meta.get("width", 16)))


def _built(path: Path, build: Callable[[dict], Any]) -> Any:
    """The module ``build`` makes from a checkpoint's meta (its sizes), with the checkpoint's weights."""
    state, meta = load_checkpoint(path)
    module = build(meta)
    module.load_state_dict(state)
    return module
