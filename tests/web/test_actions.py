"""Release, discard, download, retry, re-push, reprocess and sign off: from the console and from
the command line, each audited with who did it; and a quarantined instance sent again with the
same bytes is processed again."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from gateway.audit import events as audit
from gateway.audit.tables import AuditEvent
from gateway.ingest.validate import InstanceHeader
from gateway.queue.intake import Intake, register_instance
from gateway.queue.tables import (
    Delivery,
    DeliveryState,
    Instance,
    InstanceState,
    Output,
    QuarantineEntry,
    Study,
    StudyState,
)
from tests.web.conftest import client_for, csrf_of

SECRET = b"test-secret"


def _file(folder: Path, name: str, data: bytes) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return str(folder / name)


def seed(console) -> dict:
    """A done study: one instance delivered to 'archive' (output kept), one quarantined; and
    one entry refused at ingest."""
    config, db, _ = console
    storage = config.storage
    with db.session() as session:
        study = Study(study_key="cd" * 32, anon_uid="2.25.777", calling_ae="SCANNER", state=StudyState.DONE)
        session.add(study)
        session.flush()
        good = Instance(study_id=study.id, sop_key="01" * 32, anon_uid="2.25.778", sop_class_uid="1.2",
                        transfer_syntax_uid="1.2.840.10008.1.2.1", sha256="aa" * 32, size=4,
                        spool_path=_file(storage.spool, "good.dcm", b"good"), state=InstanceState.PROCESSED)
        held = Instance(study_id=study.id, sop_key="02" * 32, sop_class_uid="1.2",
                        transfer_syntax_uid="1.2.840.10008.1.2.1", sha256="bb" * 32, size=4,
                        spool_path=_file(storage.spool, "held.dcm", b"held"), state=InstanceState.QUARANTINED)
        session.add_all([good, held])
        session.flush()
        output = Output(instance_id=good.id, profile="basic", anon_uid="2.25.778", sop_class_uid="1.2",
                        transfer_syntax_uid="1.2.840.10008.1.2.1",
                        path=_file(storage.outbox / "basic", "out.dcm", b"out"))
        session.add(output)
        session.flush()
        session.add(Delivery(output_id=output.id, study_id=study.id, destination="archive",
                             state=DeliveryState.SENT))
        entry = QuarantineEntry(stage="pipeline", reason="instance has more frames than pixels.max_frames",
                                path=held.spool_path, instance_id=held.id, study_id=study.id)
        refused = QuarantineEntry(stage="ingest", reason="dataset is truncated",
                                  path=_file(storage.quarantine, "r.bin", b"raw"))
        session.add_all([entry, refused])
        session.flush()
        return {"study": study.id, "good": good.id, "held": held.id, "entry": entry.id, "refused": refused.id}


def _audited(db, kind) -> list[AuditEvent]:
    with db.session() as session:  # not expired at the end, unlike a reading()
        return list(session.scalars(select(AuditEvent).where(AuditEvent.event == kind)))


def test_an_operator_releases_a_quarantined_instance(console):
    ids = seed(console)
    config, db, _ = console
    operator = client_for(console, "otto")
    token = csrf_of(operator)
    response = operator.post(f"/quarantine/{ids['entry']}/release", data={"csrf": token}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/quarantine?done=released"
    with db.reading() as session:
        assert session.get(Instance, ids["held"]).state == InstanceState.RECEIVED
        assert session.get(Study, ids["study"]).state == StudyState.RECEIVING
        assert session.get(QuarantineEntry, ids["entry"]) is None
    [event] = _audited(db, "released")
    assert event.actor == "web:otto" and event.detail["stage"] == "pipeline"
    # An instance refused at ingest was never readable: nothing to process again.
    response = operator.post(f"/quarantine/{ids['refused']}/release", data={"csrf": token})
    assert response.status_code == 409 and "sender must send it again" in response.text


def test_discarding_deletes_the_file_and_the_entry(console):
    ids = seed(console)
    config, db, _ = console
    operator = client_for(console, "otto")
    operator.post(f"/quarantine/{ids['entry']}/discard", data={"csrf": csrf_of(operator)})
    with db.reading() as session:
        instance = session.get(Instance, ids["held"])
        assert instance.spool_path is None and instance.state == InstanceState.QUARANTINED
    assert not (config.storage.spool / "held.dcm").exists()
    assert "more frames" not in operator.get("/quarantine").text
    assert _audited(db, "quarantine_discarded")[0].actor == "web:otto"


def test_only_an_admin_downloads_an_original_and_it_is_audited(console):
    ids = seed(console)
    db = console[1]
    operator, admin = client_for(console, "otto"), client_for(console, "ada")
    response = operator.post(f"/quarantine/{ids['entry']}/original", data={"csrf": csrf_of(operator)})
    assert response.status_code == 403 and _audited(db, "original_read") == []
    response = admin.post(f"/quarantine/{ids['entry']}/original", data={"csrf": csrf_of(admin)})
    assert response.status_code == 200 and response.content == b"held"
    assert response.headers["cache-control"] == "no-store"
    assert [e.actor for e in _audited(db, "original_read")] == ["web:ada"]


def test_repush_reprocess_retry_and_signoff_from_the_study_page(console):
    ids = seed(console)
    config, db, _ = console
    operator = client_for(console, "otto")
    token = csrf_of(operator, "/studies/2.25.777")
    sid = ids["study"]
    assert operator.post(f"/studies/{sid}/repush", data={"csrf": token, "destination": "second"},
                         follow_redirects=False).headers["location"] == "/studies/2.25.777?done=repushed"
    with db.reading() as session:
        rows = session.execute(select(Delivery.destination, Delivery.state)).all()
        assert sorted(rows) == [("archive", DeliveryState.SENT), ("second", DeliveryState.PENDING)]
        assert session.get(Study, sid).state == StudyState.FORWARDING
    assert operator.post(f"/studies/{sid}/signoff", data={"csrf": token, "verdict": "approved"}).status_code == 200
    assert "approved</span> by otto" in operator.get("/studies/2.25.777").text
    operator.post(f"/studies/{sid}/reprocess", data={"csrf": token})
    with db.reading() as session:
        states = {i.id: i.state for i in session.scalars(select(Instance))}
    assert states == {ids["good"]: InstanceState.RECEIVED, ids["held"]: InstanceState.RECEIVED}
    operator.post(f"/studies/{sid}/retry", data={"csrf": token})
    kinds = [e.event for e in _audited(db, "repushed") + _audited(db, "qa_signoff")
             + _audited(db, "reprocessed") + _audited(db, audit.RETRY)]
    assert kinds == ["repushed", "qa_signoff", "reprocessed", "retry"]


def test_the_same_actions_on_the_command_line(console, tmp_path, capsys, monkeypatch):
    from gateway.cli import main

    ids = seed(console)
    config, db, users = console
    (tmp_path / "c.yaml").write_text(
        f"storage: {{root: {config.storage.root}}}\ndatabase: {{url: '{config.database.url}'}}\n"
        "egress: {destinations: [{name: archive, ae_title: A, host: 127.0.0.1, port: 1},"
        " {name: second, ae_title: B, host: 127.0.0.1, port: 2}]}\n")
    monkeypatch.setenv("DEID_GATEWAY_SECRET", "cli-secret")
    cfg = ["--config", str(tmp_path / "c.yaml")]
    assert main(["quarantine", *cfg]) == 0 and f"#{ids['entry']}" in capsys.readouterr().out
    assert main(["original", str(ids["entry"]), str(tmp_path / "orig.dcm"), *cfg]) == 0
    assert (tmp_path / "orig.dcm").read_bytes() == b"held"
    assert (tmp_path / "orig.dcm").stat().st_mode & 0o077 == 0
    assert main(["release", str(ids["entry"]), *cfg]) == 0
    assert main(["release", str(ids["refused"]), *cfg]) == 2
    assert main(["repush", "2.25.777", "second", *cfg]) == 0
    assert main(["signoff", "2.25.777", "--verdict", "needs-changes", *cfg]) == 0
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("a-password-for-cli\n"))
    assert main(["users", "add", "carol", "--role", "operator", "--password-stdin", *cfg]) == 0
    assert users.verify("carol", "a-password-for-cli").role == "operator"
    actors = {e.event: e.actor for e in _audited(db, "released") + _audited(db, "repushed")
              + _audited(db, "original_read") + _audited(db, "users_changed")}
    assert set(actors) == {"released", "repushed", "original_read", "users_changed"}
    assert all(actor.startswith("cli:") for actor in actors.values())


def test_a_quarantined_instance_sent_again_with_the_same_bytes_is_processed_again(console):
    ids = seed(console)
    db = console[1]
    header = InstanceHeader(sop_class_uid="1.2", sop_instance_uid="1.2.3.4", study_instance_uid="1.2.3",
                            series_instance_uid="1.2.3.5", transfer_syntax_uid="1.2.840.10008.1.2.1")
    path = console[0].storage.spool / "same.dcm"
    with db.session() as session:
        assert register_instance(session, SECRET, header, path, "ee" * 32, 4, "SCANNER")[0] is Intake.NEW
    with db.session() as session:
        assert register_instance(session, SECRET, header, path, "ee" * 32, 4, "SCANNER")[0] is Intake.DUPLICATE
        session.scalars(select(Instance).where(Instance.spool_path == str(path))).one().state = \
            InstanceState.QUARANTINED
    with db.session() as session:
        outcome, _, superseded = register_instance(session, SECRET, header, path, "ee" * 32, 4, "SCANNER")
        assert outcome is Intake.REPLACED and superseded == []
        assert session.scalars(select(Instance).where(Instance.spool_path == str(path))).one().state == \
            InstanceState.RECEIVED
    assert ids  # the seeded study is untouched by another study's instance
