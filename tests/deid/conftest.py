"""Shared fixtures: a config, a secret, and pydicom's test files read once per session."""

from __future__ import annotations

import copy
import shutil
import subprocess
import warnings
from functools import cache
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_files

from gateway.config import GatewayConfig, load_config
from gateway.deid.stage import HeaderStage
from gateway.pipeline.stage import InstanceContext

SECRET = b"test-secret-0123456789abcdef-0123456789"
PROFILES = ["basic", "research", "retain-dates"]


@cache
def dataset(name: str) -> pydicom.Dataset:
    """A corpus file, read once per session (tests work on deep copies)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pydicom.dcmread(corpus_paths()[name])
        except Exception:  # noqa: BLE001 - header readable, pixel data truncated
            pytest.skip("pydicom cannot read this file completely")


def _short_name(path: str, taken: dict) -> str:
    p = Path(path)
    name = p.name if p.parent.name in ("test_files", "data") else f"{p.parent.name}/{p.name}"
    while name in taken:
        name = "_" + name
    return name


@cache
def corpus_paths() -> dict[str, str]:
    out: dict[str, str] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in sorted(get_testdata_files()):
            try:
                pydicom.dcmread(path, stop_before_pixels=True)
            except Exception:  # noqa: BLE001
                continue
            out[_short_name(path, out)] = path
    return out


def corpus_names() -> list[str]:
    return list(corpus_paths())


@pytest.fixture(scope="session")
def config() -> GatewayConfig:
    return load_config()


@cache
def stage(profile: str) -> HeaderStage:
    return HeaderStage(load_config().deid, profile, SECRET)


def run_stage(profile: str, ds: pydicom.Dataset, declared: set[str] | None = None) -> tuple[pydicom.Dataset, InstanceContext]:
    """De-identify a copy of ``ds`` under ``profile``, the way the pipeline does."""
    ctx = InstanceContext(original=ds, profile=profile, declared_options=set(declared or ()))
    out = stage(profile)(copy.deepcopy(ds), ctx)
    return out, ctx


def dciodvfy_errors(path: str | Path) -> list[str]:
    result = subprocess.run(["dciodvfy", "-new", str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")]


needs_dciodvfy = pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools not installed")
