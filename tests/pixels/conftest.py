"""Fixtures of the pixel-stage tests.

The text finder is the shipped model (models.inference.TextFinder with models/weights) when the
weights are there, else the classical stub. A second-opinion reader (rapidocr) is used when
installed to check that no PHI string can still be read from an output.
"""

from __future__ import annotations

import copy
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from stub_finder import StubFinder

from gateway.pipeline.stage import InstanceContext
from gateway.pixels.config import PixelsConfig
from gateway.pixels.stage import PixelStage

ROOT = HERE.parent.parent
SAMPLES = ROOT.parent / "shared" / "samples"


def real_finder():
    """The shipped TextFinder when its weights exist; PIXELS_TEST_FINDER=stub forces the stub."""
    if os.environ.get("PIXELS_TEST_FINDER", "auto") == "stub":
        return None
    weights = ROOT / "models" / "weights"
    if not weights.is_dir() or not any(p for p in weights.iterdir() if not p.name.startswith(".")):
        return None
    try:
        import torch

        from models.inference import TextFinder
    except ImportError:
        return None
    from gateway.pixels.finders import optimize_for_inference

    torch.set_num_threads(1)  # what the stage does on CPU (pixels.cpu_threads)
    finder = TextFinder.load(device="cpu")
    optimize_for_inference(finder, "cpu")  # what the stage's loader does
    return finder


@pytest.fixture(scope="session")
def finder():
    return real_finder() or StubFinder()


@pytest.fixture(scope="session")
def using_real_finder(finder) -> bool:
    return not isinstance(finder, StubFinder)


class Readers:
    """Everything available that can read text: rapidocr, and the real recognizer."""

    def __init__(self, finder):
        self.engines = []
        if not isinstance(finder, StubFinder):
            self.engines.append(("model", finder))
        try:
            from gateway.pixels.finders import RapidOcrFinder

            self.engines.append(("rapidocr", RapidOcrFinder()))
        except Exception:  # noqa: BLE001, S110 - rapidocr is optional
            pass

    def __bool__(self) -> bool:
        return bool(self.engines)

    def read_all(self, image: np.ndarray) -> str:
        """All text any reader finds anywhere in the image, upper-cased and without spaces."""
        out = []
        for name, engine in self.engines:
            if name == "rapidocr":
                res = engine._engine(engine._bgr(image))
                out.extend(getattr(res, "txts", None) or ())
            else:
                regions = engine.detect(image)
                out.extend(engine.read(image, regions))
        return "".join(out).upper().replace(" ", "")


@pytest.fixture(scope="session")
def readers(finder):
    return Readers(finder)


def make_stage(finder, **pixels) -> PixelStage:
    return PixelStage(PixelsConfig.model_validate({"enabled": True, **pixels}), "cpu", finder=finder)


@pytest.fixture
def stage(finder):
    return make_stage(finder)


def run(stage: PixelStage, ds: pydicom.Dataset):
    """Run the stage like the pipeline does (on a copy, original kept in the context)."""
    ctx = InstanceContext(original=ds)
    out = stage(copy.deepcopy(ds), ctx)
    return out, ctx


def written(ds: pydicom.Dataset) -> pydicom.Dataset:
    """What a destination receives: the dataset written and read back."""
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    buf.seek(0)
    return pydicom.dcmread(buf)


def dciodvfy_errors(ds: pydicom.Dataset, tmp_path: Path, name: str) -> int:
    path = tmp_path / f"{name}.dcm"
    ds.save_as(path, enforce_file_format=True)
    res = subprocess.run(["dciodvfy", str(path)], check=False, capture_output=True, text=True)
    return sum(1 for line in (res.stdout + res.stderr).splitlines() if line.startswith("Error"))


have_dciodvfy = shutil.which("dciodvfy") is not None


@pytest.fixture(scope="session")
def tiny_sd2_dir(tmp_path_factory):
    pytest.importorskip("diffusers")
    from tiny_sd2 import build_tiny_sd2

    return build_tiny_sd2(tmp_path_factory.mktemp("tiny-sd2"))
