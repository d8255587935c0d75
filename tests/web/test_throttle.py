"""The login throttle counts failures in the database, on SQLite and PostgreSQL alike
(gateway.web.auth.throttled, refusal_to_audit)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.audit import events as audit
from gateway.config import load_config
from gateway.queue.tables import utcnow
from gateway.web import auth
from tests.pull import databases

database_url, db = databases.database_url, databases.db  # the fixtures: SQLite, and PostgreSQL where installed


@pytest.fixture
def web(tmp_path):
    return load_config(None, {"storage": {"root": str(tmp_path)},
                              "web": {"login_max_failures": 3, "login_window_minutes": 10}}).web


def fail(db, user: str | None, client: str, reason: str = auth.WRONG_PASSWORD, ago: float = 0.0) -> None:
    with db.session() as session:
        event = audit.record(session, auth.LOGIN_FAILED, actor="web", user=user, client=client, reason=reason)
        event.at = utcnow() - timedelta(seconds=ago)


def test_a_name_is_throttled_after_its_failures_within_the_window_from_any_client(db, web):
    fail(db, "otto", "10.0.0.1")
    fail(db, "otto", "10.0.0.2")
    fail(db, "otto", "10.0.0.3", ago=11 * 60)  # before the window
    with db.reading() as session:
        assert not auth.throttled(session, web, "otto", "10.0.0.9")
    fail(db, "otto", "10.0.0.4")
    with db.reading() as session:
        assert auth.throttled(session, web, "otto", "10.0.0.9")
        assert not auth.throttled(session, web, "vera", "10.0.0.9")


def test_a_client_is_throttled_after_four_times_as_many_failures_whatever_the_names(db, web):
    for _ in range(11):
        fail(db, None, "10.0.0.7")  # unknown names are not written down, the client is
    with db.reading() as session:
        assert not auth.throttled(session, web, "anyone", "10.0.0.7")
    fail(db, None, "10.0.0.7")
    with db.reading() as session:
        assert auth.throttled(session, web, "anyone", "10.0.0.7")
        assert not auth.throttled(session, web, "anyone", "10.0.0.8")


def test_of_a_throttled_client_s_refusals_one_a_minute_is_audited(db, web):
    with db.reading() as session:
        assert auth.refusal_to_audit(session, "10.0.0.7")
    fail(db, "otto", "10.0.0.7", reason=auth.TOO_MANY_FAILURES)
    with db.reading() as session:
        assert not auth.refusal_to_audit(session, "10.0.0.7")
        assert auth.refusal_to_audit(session, "10.0.0.8")
    fail(db, "otto", "10.0.0.8", reason=auth.TOO_MANY_FAILURES, ago=61)
    with db.reading() as session:
        assert auth.refusal_to_audit(session, "10.0.0.8")
