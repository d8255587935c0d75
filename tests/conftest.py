from __future__ import annotations

from pathlib import Path

import pytest
from pynetdicom import _config as pynetdicom_config

from gateway.logs import quiet_libraries

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

quiet_libraries()


@pytest.fixture(autouse=True)
def pynetdicom_sends_as_it_would():
    """The forwarder switches pynetdicom to sending files undecoded, process-wide (see
    gateway/egress/scu.py); a test that runs it in this process must not change how later tests
    send their own files."""
    chunked = pynetdicom_config.STORE_SEND_CHUNKED_DATASET
    yield
    pynetdicom_config.STORE_SEND_CHUNKED_DATASET = chunked


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
