"""Fixtures of the biometric tests: a generator exported from fixed random weights (so the
tests do not depend on what training produced), a stand-in flow model, and the shared CXR folder."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SHARED


@dataclass
class FixedFlow:
    """A FlowModel stand-in: the same smooth flow (two sine waves) whatever the image."""

    mu: float = 0.01
    size: int = 64
    version: str = "fixed-flow"
    runtime: str = "numpy"

    def flow(self, image01: np.ndarray) -> np.ndarray:
        yy, xx = np.mgrid[0:self.size, 0:self.size].astype(np.float32) / self.size
        return np.stack([np.sin(2 * np.pi * yy), np.cos(2 * np.pi * xx)]).astype(np.float32)


@pytest.fixture
def fixed_flow() -> FixedFlow:
    return FixedFlow()


@pytest.fixture(scope="session")
def exported_generator(tmp_path_factory) -> Path:
    """A weights folder holding prichexy_mu0.01.onnx exported from a seeded, untrained U-Net whose
    last layer is scaled up so that its flow is not negligible."""
    torch = pytest.importorskip("torch")
    from models.biometric.networks import PriCheXyNet
    from models.training.biometric.export import export

    torch.manual_seed(0)
    model = PriCheXyNet(0.01, 8).eval()
    with torch.no_grad():
        model.generator.unet.head.weight.mul_(30)
        for p in model.parameters():  # what the fp16 export will hold
            p.copy_(p.half().float())
    folder = tmp_path_factory.mktemp("weights")
    data = export(model, 64)
    (folder / "prichexy_mu0.01.onnx").write_bytes(data)
    (folder / "prichexy_mu0.01.json").write_text(json.dumps(
        {"version": "test-generator", "mu": 0.01, "size": 64, "onnx_sha256": hashlib.sha256(data).hexdigest()}))
    torch.save(model.state_dict(), folder / "model.pt")
    return folder


@pytest.fixture(scope="session")
def cxr() -> Path:
    folder = SHARED / "cxr"
    if not (folder / "index.csv").is_file():
        pytest.skip("../shared/cxr is not present")
    return folder
