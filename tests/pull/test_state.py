"""A pull's state: the same list resumes the same run, only unfinished items are done again,
and each outcome is audited with its line and counts, never the request."""

from __future__ import annotations

from sqlalchemy import select

from gateway.audit.tables import AuditEvent
from gateway.db import Database
from gateway.pull.dimse import Retrieved
from gateway.pull.requests import PullRequest
from gateway.pull.state import PullState, study_key
from gateway.queue.tables import PullItemState, PullRun
from gateway.schema import Base

SECRET = b"s" * 32


def _requests(*accessions: str) -> list[PullRequest]:
    return [PullRequest(n, (("AccessionNumber", a),)) for n, a in enumerate(accessions, start=1)]


def _stored(db: Database) -> str:
    """Every row of every table, as text: what the database holds, whichever it is."""
    with db.reading() as session:
        return "".join(repr(row) for table in Base.metadata.sorted_tables
                       for row in session.execute(table.select()).all())


def test_the_same_list_resumes_and_only_unfinished_items_are_redone(db):
    state = PullState(db, SECRET, "operator:test")
    run, resumed = state.open_run("pacs", "accessions", _requests("SECRET-A", "SECRET-B", "SECRET-C"))
    assert not resumed
    items = state.todo(run, find_only=False)
    assert list(items) == [1, 2, 3]

    state.begin(items[1])
    key = study_key(SECRET, "1.2.3")
    assert state.found(items[1], [key]) == set()
    state.retrieved(items[1], key, Retrieved(completed=4, status=0))
    state.finish(run, items[1], PullItemState.RETRIEVED)
    state.finish(run, items[2], PullItemState.NOT_FOUND)
    state.begin(items[3])
    state.found(items[3], [study_key(SECRET, "1.2.4")])  # interrupted here

    again, resumed = state.open_run("pacs", "accessions", _requests("SECRET-A", "SECRET-B", "SECRET-C"))
    assert (again, resumed) == (run, True)
    assert list(state.todo(run, find_only=False)) == [3]
    assert list(state.todo(run, find_only=True)) == []
    assert state.open_run("pacs", "accessions", _requests("SECRET-A"))[0] != run  # another list, another run
    assert state.close(run) == {"retrieved": 1, "not_found": 1, "found": 1}

    with db.reading() as session:
        details = session.scalars(select(AuditEvent.detail).where(AuditEvent.event == "pull_item")).all()
        assert session.get(PullRun, run).finished_at is None
    assert details == [
        {"run": run, "line": 1, "outcome": "retrieved", "studies": 1, "instances": 4, "failed": 0},
        {"run": run, "line": 2, "outcome": "not_found", "studies": 0, "instances": 0, "failed": 0},
    ]
    assert "SECRET" not in _stored(db)
