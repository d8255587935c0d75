"""``serve`` starts its worker in a process of its own, and still refuses to start when the
worker's pipeline cannot be built: the receiver never listens, and the reason is the setting's."""

from __future__ import annotations

import pytest

from tests.peers import Gateway, port_open

pytestmark = pytest.mark.filterwarnings("ignore")


def test_a_stage_that_cannot_start_in_the_worker_process_stops_serve(tmp_path):
    gateway = Gateway(tmp_path / "gw", settings={
        "deid": {"profiles": {"research-cxr": {"options": ["retain_patient_characteristics"]}}},
        "biometric": {"profiles": ["research-cxr"], "weights_dir": str(tmp_path / "no-generator-here")},
        "pixels": {"enabled": False},
    })
    gateway.write_config()
    process = gateway._popen("serve")
    assert process.wait(120) != 0
    assert not port_open(gateway.port)
    assert "biometric.mu: no generator" in gateway.logs()
