"""The anonymizations the evaluation compares, by name, as functions of a stack of images.

- ``none``: the images as they are;
- ``prichexy:MU``: PriCheXy-Net's deformation with the generator trained for MU
  (``prichexy_muMU.pt`` in the work folder, else the shipped ONNX export in ``models/weights``);
- ``privacynet``: the Privacy-Net baseline (``privacynet.pt``);
- ``dppix`` or ``dppix:B,M,EPS``: DP-Pix (defaults b = 8, m = 1, eps = 0.1) applied as in the
  paper, to the image at 256 px (upsampled from the 64 px the networks see), then brought back to
  64 px; the noise is seeded by the split's name, so the evaluation is repeatable;
- ``blur:SIGMA``: a plain Gaussian blur (sigma in pixels of the 64 px image), the reference of
  matched SSIM.

Each returns ``f(images (N, H, W) in [0, 1], split) -> images``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from models.biometric.dppix import dp_pix
from models.biometric.networks import PriCheXyNet, PrivacyNet
from models.training.biometric.common import load_checkpoint, read_meta, to_tensor

Anonymize = Callable[[np.ndarray, str], np.ndarray]
DPPIX_SIZE = 256


def _torch_anonymizer(model: torch.nn.Module) -> Anonymize:
    @torch.no_grad()
    def run(images: np.ndarray, split: str) -> np.ndarray:
        x = to_tensor(images)
        return torch.cat([model(x[i:i + 64]) for i in range(0, len(x), 64)])[:, 0].numpy()

    return run


def _prichexy(mu: float, work: Path) -> Anonymize:
    path = work / f"prichexy_mu{mu!r}.pt"
    if path.exists():
        model = PriCheXyNet(mu, int(read_meta(path).get("features", 32)))
        return _torch_anonymizer(load_checkpoint(model, path))
    from models.biometric.deform import warp
    from models.biometric.runtime import FlowModel

    shipped = FlowModel.load(mu)
    return lambda images, split: np.stack([np.clip(warp(im, shipped.flow(im), mu), 0, 1) for im in images])


def _dppix(b: int, m: int, eps: float) -> Anonymize:
    def run(images: np.ndarray, split: str) -> np.ndarray:
        rng = np.random.default_rng(zlib.crc32(f"dppix:{split}".encode()))
        out = []
        for image in images:
            h, w = image.shape
            big = cv2.resize(image, (DPPIX_SIZE, DPPIX_SIZE), interpolation=cv2.INTER_LINEAR)
            pix = dp_pix(np.clip(big, 0, 1), rng, b, m, eps)
            out.append(cv2.resize(pix, (w, h), interpolation=cv2.INTER_AREA))
        return np.stack(out)

    return run


def _blur(sigma: float) -> Anonymize:
    def run(images: np.ndarray, split: str) -> np.ndarray:
        if sigma <= 0:
            return images.copy()
        return np.stack([cv2.GaussianBlur(im, (0, 0), sigma, borderType=cv2.BORDER_REFLECT) for im in images])

    return run


def make_anonymizer(spec: str, work: Path) -> Anonymize:
    """The anonymization named by ``spec`` (see the module's docstring)."""
    kind, _, arg = spec.partition(":")
    if kind == "none":
        return lambda images, split: images.copy()
    if kind == "prichexy":
        return _prichexy(float(arg or 0.01), work)
    if kind == "privacynet":
        return _torch_anonymizer(load_checkpoint(PrivacyNet(), work / "privacynet.pt"))
    if kind == "dppix":
        b, m, eps = (arg.split(",") if arg else ("8", "1", "0.1"))
        return _dppix(int(b), int(m), float(eps))
    if kind == "blur":
        return _blur(float(arg))
    raise ValueError(f"unknown anonymizer {spec!r}")
