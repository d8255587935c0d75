"""A scanner sends a study; the research archive receives it de-identified, complete, once."""

from __future__ import annotations

import re

from pydicom import dcmread
from io import BytesIO

from tests.integration.conftest import destination_for
from tests.peers import echoscu, storescu, wait_for
from tests.study import FORBIDDEN


def test_a_study_arrives_in_the_archive_deidentified_and_whole(archive, gateway_factory, study):
    gateway = gateway_factory([destination_for(archive)]).start()

    echo = echoscu(gateway.port)
    assert echo.returncode == 0, echo.stderr

    sent = storescu(gateway.port, study.files)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    responses = re.findall(r"Received Store Response \((\w+)", sent.stdout + sent.stderr)
    assert responses == ["Success"] * len(study.files)

    wait_for(lambda: len(archive.instances()) == len(study.files), 120, what="all instances archived")
    archived = [dcmread(BytesIO(archive.instance_file(i))) for i in archive.instances()]

    # Grouping survives under new UIDs: one study, the same two series, no original UID left.
    assert len({ds.StudyInstanceUID for ds in archived}) == 1
    assert archived[0].StudyInstanceUID != study.study_uid
    series = {ds.SeriesInstanceUID for ds in archived}
    assert len(series) == 2 and not series & set(study.series_uids)
    new_sops = {ds.SOPInstanceUID for ds in archived}
    assert len(new_sops) == len(study.files) and not new_sops & set(study.sop_uids)

    # The reference inside a sequence points at the referenced instance's new UID.
    referencing = [ds for ds in archived if "ReferencedImageSequence" in ds]
    assert len(referencing) == 1
    assert referencing[0].ReferencedImageSequence[0].ReferencedSOPInstanceUID in new_sops

    for ds in archived:
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    # No identifying string in any archived byte, nor in the gateway's logs.
    for orthanc_id in archive.instances():
        data = archive.instance_file(orthanc_id)
        assert not [s for s in FORBIDDEN if s in data]
    logs = gateway.logs()
    assert not [s for s in FORBIDDEN if s.decode() in logs]

    wait_for(lambda: "forwarded" in gateway.cli("audit", "list").stdout, 30, what="forwarded audit event")
    audit = gateway.cli("audit", "list").stdout
    assert not [s for s in FORBIDDEN if s.decode() in audit]
    assert archive.stores_received() == len(study.files)

    # Once every destination accepted every instance, the originals leave the spool.
    spool = gateway.workdir / "var" / "spool"
    wait_for(lambda: not list(spool.rglob("*.dcm")), 30, what="the spool to be purged")
