"""Routing and filter rules against real peers: a built-in rule drops a study's screenshot,
and two senders reach two archives, each with its own profile."""

from __future__ import annotations

from io import BytesIO

from pydicom import dcmread

from tests.integration.conftest import destination_for
from tests.peers import Orthanc, storescu, wait_for
from tests.pull.cohort import make_small_study

NO_PIXELS = {"pixels": {"enabled": False}}  # rules decide before any stage; keep the test quick


def _archived(orthanc: Orthanc) -> list:
    return [dcmread(BytesIO(orthanc.instance_file(i))) for i in orthanc.instances()]


def test_a_rule_drops_a_secondary_capture(archive, gateway_factory, tmp_path):
    study = make_small_study(tmp_path / "study", "ACC-SC-1", "PID-SC-1", instances=2, screenshot=True)
    gateway = gateway_factory([destination_for(archive)], rules={"ordered": [{"use": "drop-screenshots"}]},
                              **NO_PIXELS).start()
    sent = storescu(gateway.port, study.files)
    assert sent.returncode == 0, sent.stdout + sent.stderr

    wait_for(lambda: "forwarded" in gateway.cli("audit", "list").stdout, 60, what="the study forwarded")
    archived = _archived(archive)
    assert len(archived) == 2 and {ds.Modality for ds in archived} == {"CT"}
    audit = gateway.cli("audit", "list", "--event", "dropped").stdout
    assert audit.count("dropped") == 1 and '"rule": "drop-screenshots"' in audit
    assert "PID-SC-1" not in gateway.logs() + audit


def test_two_senders_reach_two_archives_with_two_profiles(tmp_path, gateway_factory):
    archives = [Orthanc(tmp_path / "orthanc-a", aet="ARCHIVE_A").start(),
                Orthanc(tmp_path / "orthanc-b", aet="ARCHIVE_B").start()]
    try:
        rules = {"ordered": [
            {"name": "elsewhere", "match": {"address": "10.0.0.0/8"}, "drop": True},  # not loopback
            {"name": "scanner-to-a", "match": {"calling_ae": "SCANNER", "address": "127.0.0.0/8"}, "profile": "basic",
             "destinations": ["archive-a"]},
            {"name": "storescu-to-b", "match": {"calling_ae": "STORESCU"}, "profile": "research",
             "destinations": ["archive-b"]},
        ], "otherwise": "drop"}
        gateway = gateway_factory([destination_for(archives[0], "archive-a"),
                                   destination_for(archives[1], "archive-b")], rules=rules, **NO_PIXELS).start()
        one = make_small_study(tmp_path / "one", "ACC-ONE", "PID-ONE")
        two = make_small_study(tmp_path / "two", "ACC-TWO", "PID-TWO")
        for study, sender in ((one, "SCANNER"), (two, "STORESCU")):
            sent = storescu(gateway.port, study.files, aet=sender)
            assert sent.returncode == 0, sent.stdout + sent.stderr
        wait_for(lambda: all(len(a.instances()) == 2 for a in archives), 60, what="both archives filled")
        wait_for(lambda: gateway.cli("audit", "list").stdout.count("forwarded") == 2, 30, what="both forwarded")

        codes = []
        for orthanc in archives:
            archived = _archived(orthanc)
            assert len({ds.StudyInstanceUID for ds in archived}) == 1
            codes.append({item.CodeValue for item in archived[0].DeidentificationMethodCodeSequence})
        assert "113107" not in codes[0] and "113107" in codes[1]  # basic to A; research's modified dates to B
        assert all(a.stores_received() == 2 for a in archives)  # nothing crossed over
        audit = gateway.cli("audit", "list", "--event", "processed").stdout
        assert '"scanner-to-a": 2' in audit and '"storescu-to-b": 2' in audit
    finally:
        for orthanc in archives:
            orthanc.stop()
