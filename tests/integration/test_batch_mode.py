"""``deid-gateway deid`` makes the same output UIDs as the network path, for the same key."""

import subprocess
import sys

from pydicom import dcmread

from tests.integration.conftest import destination_for
from tests.peers import storescu, wait_for


def test_batch_and_network_paths_agree_on_every_uid(archive, gateway_factory, study, tmp_path):
    gateway = gateway_factory([destination_for(archive)]).start()
    storescu(gateway.port, study.files)
    wait_for(lambda: len(archive.instances()) == len(study.files), 120, what="archived")
    network = {archive.tags(i)["SOPInstanceUID"] for i in archive.instances()}

    batch = gateway_factory([])  # same secret, its own database
    batch.write_config()
    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, "-m", "gateway", "deid", str(study.files[0].parent), str(out),
         "--config", str(batch.config_path), "--quiet"],
        capture_output=True, text=True, env=batch.env(), timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    written = sorted(out.rglob("*.dcm"))
    assert {p.stem for p in written} == network
    assert {str(dcmread(p).SOPInstanceUID) for p in written} == network
