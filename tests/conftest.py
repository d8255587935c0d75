from __future__ import annotations

from pathlib import Path

import pytest

from gateway.logs import quiet_libraries

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

quiet_libraries()


@pytest.fixture(scope="session")
def postgres():
    """One throwaway PostgreSQL server for the session; each test's database fixture creates the
    schema and drops it again. Skips where the server binaries are not installed."""
    from tests.postgres import PostgresServer

    if not PostgresServer.available():
        pytest.skip("PostgreSQL server binaries are not installed")
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def shared_samples() -> Path:
    samples = SHARED / "samples"
    if not samples.is_dir():
        pytest.skip("../shared/samples is not present")
    return samples
