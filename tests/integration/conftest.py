from __future__ import annotations

import pytest

from tests.peers import ECHOSCU, ORTHANC, STORESCU, Gateway, Orthanc
from tests.study import make_study

pytestmark = pytest.mark.peers


def pytest_collection_modifyitems(items):
    missing = [name for name, path in [("Orthanc", ORTHANC), ("storescu", STORESCU), ("echoscu", ECHOSCU)]
               if not path]
    if missing:
        skip = pytest.mark.skip(reason="not installed: " + ", ".join(missing))
        for item in items:
            if "integration" in str(item.fspath):
                item.add_marker(skip)


@pytest.fixture
def archive(tmp_path):
    orthanc = Orthanc(tmp_path / "orthanc").start()
    yield orthanc
    orthanc.stop()


def destination_for(orthanc: Orthanc, name: str = "archive") -> dict:
    return {"name": name, "ae_title": orthanc.aet, "host": "127.0.0.1", "port": orthanc.dicom_port}


@pytest.fixture
def gateway_factory(tmp_path):
    started: list[Gateway] = []

    def make(destinations, **settings) -> Gateway:
        gateway = Gateway(tmp_path / f"gateway{len(started)}", destinations=destinations, settings=settings)
        started.append(gateway)
        return gateway

    yield make
    for gateway in started:
        gateway.stop()


@pytest.fixture
def study(tmp_path):
    return make_study(tmp_path / "study")
