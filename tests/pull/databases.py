"""The databases the pull, rules and project state is checked on: SQLite, and PostgreSQL where
its server binaries are installed (the production database of a split deployment). Imported by
the conftest of tests/pull and tests/rules, and by tests/web/test_throttle.py."""

from __future__ import annotations

import pytest

from gateway.db import Database
from gateway.schema import Base


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'g.db'}"
    return request.getfixturevalue("postgres").url


@pytest.fixture
def db(database_url):
    database = Database(database_url)
    database.create_schema()
    yield database
    Base.metadata.drop_all(database.engine)  # PostgreSQL's database outlives the test
    database.dispose()
