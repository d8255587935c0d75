"""With the archive down the gateway keeps retrying; once it is up, all arrive exactly once."""

import re

from tests.integration.conftest import destination_for
from tests.peers import Orthanc, storescu, wait_for


def test_deliveries_wait_for_the_archive_and_arrive_exactly_once(tmp_path, gateway_factory, study):
    archive = Orthanc(tmp_path / "late-archive")  # configured, not yet started
    gateway = gateway_factory([destination_for(archive)]).start()

    sent = storescu(gateway.port, study.files)
    assert re.findall(r"Received Store Response \((\w+)", sent.stdout + sent.stderr) == (
        ["Success"] * len(study.files)
    )
    wait_for(lambda: "delivery_retry" in gateway.cli("audit", "list").stdout, 60,
             what="a failed delivery attempt")
    status = gateway.cli("status").stdout
    assert "pending" in status

    archive.start()
    try:
        wait_for(lambda: len(archive.instances()) == len(study.files), 120, what="delivery after recovery")
        wait_for(lambda: "forwarded" in gateway.cli("audit", "list").stdout, 30, what="study closed")
        assert archive.stores_received() == len(study.files)
    finally:
        archive.stop()


def test_a_study_whose_attempts_run_out_fails_visibly_and_retry_sends_it(tmp_path, gateway_factory, study):
    archive = Orthanc(tmp_path / "late-archive")
    gateway = gateway_factory([destination_for(archive)], egress={"max_attempts": 2}).start()
    storescu(gateway.port, study.files[:3])

    wait_for(lambda: "failed studies (1)" in gateway.cli("status").stdout, 90, what="the study to fail")
    failed = gateway.cli("audit", "list", "--event", "failed").stdout
    study_uid = failed.split()[3]

    archive.start()
    try:
        retried = gateway.cli("retry", study_uid)
        assert retried.returncode == 0, retried.stderr
        wait_for(lambda: len(archive.instances()) == 3, 60, what="delivery after retry")
        assert archive.stores_received() == 3
    finally:
        archive.stop()
