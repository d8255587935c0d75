"""SQLite and PostgreSQL under the state these tests check (see tests/pull/databases.py)."""

from tests.pull.databases import database_url, db  # noqa: F401 - fixtures
