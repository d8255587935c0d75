"""``serve`` starts its worker in a process of its own, and still refuses to start when the
worker's pipeline cannot be built: the receiver never listens, and the reason is the setting's.
And it stops on SIGTERM, however many arrive."""

from __future__ import annotations

import signal
import time

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


def test_a_burst_of_sigterms_stops_serve_cleanly(tmp_path):
    """A second signal that lands while the first is being handled must not hang ``serve``
    (``timeout`` or a container runtime passes on the SIGTERM a service manager also sends)."""
    gateway = Gateway(tmp_path / "gw", settings={"pixels": {"enabled": False}}).start()
    deadline = time.monotonic() + 3
    while gateway.process.poll() is None and time.monotonic() < deadline:
        gateway.process.send_signal(signal.SIGTERM)  # one every few hundred microseconds, while it stops
        time.sleep(0.0002)
    # 0, or SIGTERM's own code for one that landed after Python put the default handler back on
    # its way out: either way it ended, and did not hang.
    assert gateway.process.wait(60) in (0, -signal.SIGTERM)
    assert "stopping" in gateway.logs()
