"""An acknowledged instance survives a SIGKILL of the gateway and is delivered once."""

import re

from tests.integration.conftest import destination_for
from tests.peers import storescu, wait_for


def test_instances_acknowledged_before_a_kill_are_delivered_after_restart(archive, gateway_factory, study):
    # Long enough quiet time that the kill lands after acknowledgement, before forwarding.
    gateway = gateway_factory([destination_for(archive)], queue={"stable_after": 8}).start()
    sent = storescu(gateway.port, study.files)
    acknowledged = re.findall(r"Received Store Response \((\w+)", sent.stdout + sent.stderr)
    assert acknowledged == ["Success"] * len(study.files)

    gateway.kill()
    assert archive.instances() == []

    gateway.start()
    wait_for(lambda: len(archive.instances()) == len(study.files), 120, what="delivery after restart")
    wait_for(lambda: "forwarded" in gateway.cli("audit", "list").stdout, 30, what="study closed")
    assert archive.stores_received() == len(study.files)


def test_a_job_held_by_a_killed_worker_is_taken_again_after_its_lease(archive, gateway_factory, study):
    gateway = gateway_factory(
        [destination_for(archive)],
        queue={"stable_after": 0.5, "lease_seconds": 3},
        # A slow forwarder start keeps outputs from leaving before the kill.
        egress={"poll_interval": 30},
    ).start()
    storescu(gateway.port, study.files)
    wait_for(lambda: "processed" in gateway.cli("audit", "list").stdout or
             "processing" in gateway.cli("status").stdout, 60, what="the worker to start")
    gateway.kill()

    gateway.settings["egress"] = {"poll_interval": 0.2}
    gateway.start()
    wait_for(lambda: len(archive.instances()) == len(study.files), 120, what="delivery after restart")
    assert archive.stores_received() == len(study.files)
