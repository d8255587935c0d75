"""/metrics from the shared database (right whichever process is asked), /healthz, /readyz."""

from __future__ import annotations

import time
from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families

from gateway.audit import events as audit
from gateway.queue.tables import Job, JobPhase, JobState, Study, utcnow
from gateway.web import metrics, tokens
from tests.web.conftest import client_for


def _samples(client) -> dict:
    text = client.get("/metrics").text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _record(db, event, study=None, **detail):
    with db.session() as session:
        audit.record(session, event, study=study, actor="test", **detail)


def test_counts_come_from_the_audit_and_the_queue_at_scrape_time(console):
    config, db, _ = console
    with db.session() as session:
        study = Study(study_key="ef" * 32, anon_uid="2.25.9")
        session.add(study)
        session.flush()
        session.add_all([Job(study_id=study.id, state=JobState.PENDING, phase=JobPhase.PIXELS),
                         Job(study_id=study.id, state=JobState.PENDING, phase=JobPhase.HEADERS),
                         Job(study_id=study.id, state=JobState.PENDING, phase=None)])
    _record(db, audit.RECEIVED, instances=21)
    _record(db, audit.QUARANTINED, stage="pipeline", reason="instance has more frames than pixels.max_frames")
    _record(db, audit.FORWARDED, sent={"archive": 20})
    _record(db, audit.REJECTED_ASSOCIATION, reason="calling AE title not allowed")
    _record(db, audit.TLS_FAILURE, direction="egress", destination="archive", reason="certificate verify failed")
    _record(db, audit.PROCESS_ENDED, process="worker", exit_code=-9)
    _record(db, "pixels_detail", seconds=0.3)
    _record(db, "pixels_detail", seconds=7.0)
    client = client_for(console, "vera")  # any logged-in user may look (scrapers use a token)
    got = _samples(client)
    assert got[("deid_gateway_instances_received_total", ())] == 21
    assert got[("deid_gateway_instances_quarantined_total", (
        ("reason", "instance has more frames than pixels.max_frames"), ("stage", "pipeline")))] == 1
    assert got[("deid_gateway_instances_delivered_total", (("destination", "archive"),))] == 20
    assert got[("deid_gateway_associations_rejected_total", (("reason", "calling AE title not allowed"),))] == 1
    assert got[("deid_gateway_tls_failures_total", (("destination", "archive"), ("direction", "egress")))] == 1
    assert got[("deid_gateway_processes_restarted_total", (("process", "worker"),))] == 1
    assert got[("deid_gateway_queue_depth", (("role", "pixels"),))] == 2
    assert got[("deid_gateway_queue_depth", (("role", "headers"),))] == 1
    assert got[("deid_gateway_stage_seconds_count", (("stage", "pixels"),))] == 2
    assert got[("deid_gateway_stage_seconds_bucket", (("le", "0.5"), ("stage", "pixels")))] == 1
    assert got[("deid_gateway_stage_seconds_sum", (("stage", "pixels"),))] == 7.3

    # Only new events are read at the next scrape, and none is counted twice.
    _record(db, audit.RECEIVED, instances=4)
    assert _samples(client)[("deid_gateway_instances_received_total", ())] == 25
    assert _samples(client)[("deid_gateway_instances_received_total", ())] == 25


def test_an_event_committed_late_is_still_counted_once(console):
    """An event with a lower id that commits after a scrape (PostgreSQL sequences) is counted
    by the next one: only events older than the settling time are taken as final."""
    config, db, _ = console
    tally = metrics.AuditTally(db)
    _record(db, audit.RECEIVED, instances=1)
    _record(db, audit.RECEIVED, instances=2)
    with db.session() as session:  # the first event "was committed late": hide it from this scrape
        from gateway.audit.tables import AuditEvent

        first = session.get(AuditEvent, 1)
        first.event = "hidden"
    tally.update()
    assert tally.totals["received"][()] == 2
    with db.session() as session:
        session.get(AuditEvent, 1).event = audit.RECEIVED
    tally.update()
    tally.update()
    assert tally.totals["received"][()] == 3
    with db.session() as session:  # long settled: the next scrape reads from after it
        for event in session.query(AuditEvent):
            event.at = utcnow() - timedelta(hours=1)
    tally.update()
    assert tally.settled_id == 2 and tally.seen == set()


def test_metrics_answer_only_a_login_or_a_scrape_token(console):
    config, db, users = console
    token, token_hash = tokens.new_token()
    scraped = config.model_copy(update={"web": config.web.model_copy(update={"metrics_token_sha256": [token_hash]})})
    client = client_for((scraped, db, users))
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer dgw_guessed"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Basic {token}"}).status_code == 401
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and "deid_gateway_queue_depth" in answer.text
    assert client_for(console, "vera").get("/metrics").status_code == 200
    assert token not in str(scraped.model_dump())  # the configuration holds its hash only


def test_health_and_readiness(console):
    config, db, _ = console
    client = client_for(console)
    assert client.get("/healthz").text == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": True, "disk": True, "models": True}
    db.dispose()
    db.engine = __import__("sqlalchemy").create_engine("sqlite:////nonexistent/folder/x.db")
    db.readers = __import__("sqlalchemy.orm", fromlist=["sessionmaker"]).sessionmaker(db.engine)
    broken = client.get("/readyz")
    assert broken.status_code == 503 and broken.json()["checks"]["database"] is False


def test_the_example_grafana_dashboard_queries_only_metrics_the_console_exposes(console):
    import json
    import re
    from pathlib import Path

    from gateway.web.metrics import Collector

    dashboard = json.loads((Path(__file__).resolve().parents[2] / "deploy" / "grafana-dashboard.json").read_text())
    queried = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"deid_gateway_\w+", target["expr"])}
    exposed = set()
    for family in Collector(console[1], console[0]).collect():
        exposed |= {family.name, family.name + "_total", family.name + "_bucket"}
    assert queried and queried <= exposed, sorted(queried - exposed)


def test_rows_waiting_for_a_seal_and_the_last_seal_s_time_are_exposed(console):
    from gateway.audit import seals

    config, db, _ = console
    client = client_for(console, "vera")  # her login is an audit row too
    _record(db, audit.RECEIVED, instances=3)
    got = _samples(client)
    assert got[("deid_gateway_audit_unsealed_rows", ())] == 2
    assert got[("deid_gateway_audit_last_seal_timestamp_seconds", ())] == 0  # never
    seals.seal(db, b"a-secret", settle=timedelta(0))
    got = _samples(client)
    assert got[("deid_gateway_audit_unsealed_rows", ())] == 0
    assert abs(got[("deid_gateway_audit_last_seal_timestamp_seconds", ())] - time.time()) < 60
