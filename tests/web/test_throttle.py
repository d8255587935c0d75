"""The login throttle counts failures in the database, on SQLite and PostgreSQL alike, and audits
refusals through a ledger (gateway.web.throttle)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from gateway.audit import events as audit
from gateway.audit.tables import AuditEvent
from gateway.config import load_config
from gateway.ingest.refusals import ADDRESSES_PER_MINUTE, OTHER_ADDRESSES
from gateway.queue.tables import utcnow
from gateway.web import throttle
from gateway.web.throttle import Attempt
from gateway.web.users import User
from tests.pull import databases

database_url, db = databases.database_url, databases.db  # the fixtures: SQLite, and PostgreSQL where installed


@pytest.fixture
def web(tmp_path):
    return load_config(None, {"storage": {"root": str(tmp_path)},
                              "web": {"login_max_failures": 3, "login_window_minutes": 10,
                                      "login_max_failures_overall": 20}}).web


def fail(db, user: str | None, client: str, reason: str = throttle.WRONG_PASSWORD, ago: float = 0.0,
         **detail) -> None:
    with db.session() as session:
        event = audit.record(session, throttle.LOGIN_FAILED, actor="web", user=user, client=client, reason=reason,
                             **detail)
        event.at = utcnow() - timedelta(seconds=ago)


def is_throttled(db, web, name: str, client: str, device: str | None = None) -> bool:
    with db.reading() as session:
        return throttle.throttled(session, web, Attempt(name, client, device))


def test_a_name_is_throttled_after_its_failures_within_the_window_from_any_client(db, web):
    fail(db, "otto", "10.0.0.1")
    fail(db, "otto", "10.0.0.2")
    fail(db, "otto", "10.0.0.3", ago=11 * 60)  # before the window
    assert not is_throttled(db, web, "otto", "10.0.0.9")
    fail(db, "otto", "10.0.0.4")
    assert is_throttled(db, web, "otto", "10.0.0.9")
    assert not is_throttled(db, web, "vera", "10.0.0.9")


def test_a_client_is_throttled_after_four_times_as_many_failures_whatever_the_names(db, web):
    for _ in range(11):
        fail(db, None, "10.0.0.7")  # unknown names are not written down, the client is
    assert not is_throttled(db, web, "anyone", "10.0.0.7")
    fail(db, None, "10.0.0.7")
    assert is_throttled(db, web, "anyone", "10.0.0.7")
    assert not is_throttled(db, web, "anyone", "10.0.0.8")


def test_everyone_is_throttled_after_the_overall_failures_spread_over_names_and_addresses(db, web):
    for n in range(19):  # a name that is no account each time, from a new address each time
        fail(db, None, f"10.1.0.{n}")
    fail(db, None, "10.1.1.1", reason=throttle.TOO_MANY_FAILURES)  # refusals are not failures
    assert not is_throttled(db, web, "vera", "10.2.0.1")
    fail(db, None, "10.1.0.19")
    assert is_throttled(db, web, "vera", "10.2.0.1")
    assert is_throttled(db, web, "nobody", "10.2.0.2")


def test_a_browser_the_user_logged_in_from_is_held_to_its_own_failures_only(db, web):
    for n in range(20):
        fail(db, "vera", f"10.1.0.{n}")  # vera's name, and everyone, locked by a flood
    assert is_throttled(db, web, "vera", "10.0.0.5")
    assert not is_throttled(db, web, "vera", "10.0.0.5", device="veras-laptop")
    fail(db, "vera", "10.0.0.5", device="veras-laptop")
    fail(db, "vera", "10.0.0.5", device="veras-laptop")
    fail(db, "vera", "10.0.0.6", device="another-browser")
    assert not is_throttled(db, web, "vera", "10.0.0.5", device="veras-laptop")
    fail(db, "vera", "10.0.0.5", device="veras-laptop")  # someone at her laptop, guessing
    assert is_throttled(db, web, "vera", "10.0.0.5", device="veras-laptop")


def refusal_rows(db) -> list[dict]:
    with db.reading() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.event == throttle.LOGIN_FAILED)
                               .order_by(AuditEvent.id))
        return [dict(row.detail) for row in rows]


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_of_a_throttled_client_s_refusals_the_first_of_each_minute_is_a_row_the_rest_a_count(db):
    refusals, clock = throttle.Refusals(db), Clock()
    refusals.ledger.clock = clock
    vera = User("vera", "viewer", 1)
    for _ in range(30):
        refusals.refused(Attempt("vera", "10.0.0.7"), vera)
    refusals.refused(Attempt("someone", "10.0.0.8"), None)
    assert refusal_rows(db) == [
        {"user": "vera", "client": "10.0.0.7", "reason": throttle.TOO_MANY_FAILURES},
        {"user": None, "client": "10.0.0.8", "reason": throttle.TOO_MANY_FAILURES}]
    clock.now += 61  # a minute later, it is still at it
    refusals.refused(Attempt("vera", "10.0.0.7"), vera)
    assert refusal_rows(db)[2:] == [
        {"client": "10.0.0.7", "reason": throttle.TOO_MANY_FAILURES, "refusals": 29},
        {"user": "vera", "client": "10.0.0.7", "reason": throttle.TOO_MANY_FAILURES}]


def test_refusals_from_many_addresses_write_a_bounded_number_of_rows_and_count_every_one(db):
    refusals = throttle.Refusals(db)
    for n in range(1000):
        refusals.refused(Attempt(f"nobody-{n}", f"10.3.{n // 250}.{n % 250}"), None)
    refusals.flush()  # the console stops
    rows = refusal_rows(db)
    assert len(rows) == ADDRESSES_PER_MINUTE + 1
    assert rows[-1] == {"client": OTHER_ADDRESSES, "reason": throttle.TOO_MANY_FAILURES,
                        "refusals": 1000 - ADDRESSES_PER_MINUTE}
