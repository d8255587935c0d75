"""The audit review page shows the trail, without patient data."""

from fastapi.testclient import TestClient

from gateway.audit import events as audit
from gateway.db import Database
from gateway.queue.tables import QuarantineEntry, Study
from gateway.web.app import create_app


def test_the_review_page_lists_status_events_studies_and_quarantine(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'w.db'}")
    db.create_schema()
    with db.session() as session:
        study = Study(study_key="ab" * 32, anon_uid="2.25.1234", calling_ae="SCANNER")
        session.add(study)
        session.flush()
        audit.record(session, audit.RECEIVED, study=study, calling_ae="SCANNER", instances=21)
        audit.record(session, audit.FORWARDED, study=study, sent={"archive": 21})
        session.add(QuarantineEntry(stage="ingest", reason="dataset is truncated"))
    client = TestClient(create_app(db))

    assert "studies:" in client.get("/").text
    trail = client.get("/audit").text
    assert "received" in trail and "forwarded" in trail and "/studies/2.25.1234" in trail
    page = client.get("/studies/2.25.1234")
    assert page.status_code == 200 and "&quot;instances&quot;: 21" in page.text
    assert client.get("/studies/2.25.999").status_code == 404
    assert "dataset is truncated" in client.get("/quarantine").text
