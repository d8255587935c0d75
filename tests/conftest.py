from __future__ import annotations

from pathlib import Path

import pytest

from gateway.logs import quiet_libraries

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

quiet_libraries()


@pytest.fixture(scope="session")
def shared_samples() -> Path:
    samples = SHARED / "samples"
    if not samples.is_dir():
        pytest.skip("../shared/samples is not present")
    return samples
