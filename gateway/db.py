"""Database engine and schema management.

SQLite in WAL mode is the embedded default; any SQLAlchemy URL (PostgreSQL for several nodes)
works unchanged. The SQLite file is created 0600 before SQLite opens it, in a 0700 folder made
for it: SQLite gives its -wal and -shm files the database file's mode, so all three stay
private whatever the umask. Every table derives from :class:`gateway.schema.Base`, so creating the schema at
start-up covers the tables of every room (queue, audit, pseudonym mapping).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from gateway.schema import Base
from gateway.settings_base import Section
from gateway.turns import FirstComeLock, ProcessTurns


class DatabaseConfig(Section):
    # Any SQLAlchemy URL; SQLite (WAL mode) is the embedded default, PostgreSQL for several nodes.
    url: str = "sqlite:///var/gateway.db"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a committed transaction survives a power cut, which is what lets the receiver
    # acknowledge an instance as soon as its row is committed.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_SECONDS * 1000}")
    cursor.close()


class Database:
    """An engine plus a session factory, created once per process."""

    def __init__(self, url: str):
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            db_path = url.split("///", 1)[-1] if "///" in url else ""
            turns_file = None
            if db_path and db_path != ":memory:" and not db_path.startswith("file:"):
                _private_database_file(Path(db_path))
                turns_file = Path(db_path + TURNS_SUFFIX)
            self.engine: Engine = create_engine(
                url, connect_args={"timeout": BUSY_SECONDS, "check_same_thread": False,
                                   "factory": _writer_turns(turns_file)}
            )
            event.listen(self.engine, "connect", _sqlite_pragmas)
            # SQLite's own BEGIN is deferred, so two writers can both read a row as free.
            # BEGIN IMMEDIATE takes the write lock up front, which is what makes job claims atomic.
            # A reader (``reading``) begins deferred: in WAL mode it then never holds up a writer,
            # so a status page being polled cannot delay a C-STORE acknowledgement.
            event.listen(self.engine, "begin", _sqlite_begin)
            _disable_pysqlite_autobegin(self.engine)
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.readers = sessionmaker(self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed on success, rolled back on any exception."""
        with self.sessions() as session:
            with session.begin():
                yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A transaction for looking only (reports, pages): it takes no write lock and is rolled
        back at the end, so nothing written through it by mistake is kept."""
        with self.readers() as session:
            session.begin()
            try:
                yield session
            finally:
                session.rollback()

    def create_schema(self) -> None:
        """Create missing tables and add missing columns (additive migrations only)."""
        # Importing the model modules registers their tables on Base.metadata.
        import gateway.audit.tables  # noqa: F401
        import gateway.queue.tables  # noqa: F401
        import gateway.deid.tables  # noqa: F401

        Base.metadata.create_all(self.engine)
        _add_missing_columns(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()


log = logging.getLogger("gateway.db")


def _private_database_file(path: Path) -> None:
    """Create the SQLite file (and missing folders) readable by the gateway's user only, and
    take group and other access away from one made earlier, and from its -wal and -shm."""
    for folder in reversed([path.parent, *path.parent.parents]):
        if not folder.exists():
            folder.mkdir(mode=0o700, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for member in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = stat.S_IMODE(member.stat().st_mode)
            if mode & 0o077:
                member.chmod(mode & 0o700)
                log.warning("%s was readable by others (mode %04o); made it private", member, mode)
        except FileNotFoundError:
            continue
        except PermissionError:  # not the owner: say so, the site decides
            log.warning("%s is readable by others and cannot be made private", member)


#: The execution option that marks a reader's connection (see ``Database.reading``).
READ_ONLY = "deid_read_only"


#: How long a writer waits for SQLite's write lock before its transaction fails.
BUSY_SECONDS = 30


def _sqlite_begin(conn) -> None:
    if conn.get_execution_options().get(READ_ONLY, False):
        conn.exec_driver_sql("BEGIN")
        return
    writer = conn.connection.dbapi_connection
    writer.take_turn()
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        writer.end_turn()
        raise


#: Beside the SQLite file: the lock its writers in several processes take turns on.
TURNS_SUFFIX = "-turns"


def _writer_turns(turns_file: Path | None) -> type[sqlite3.Connection]:
    """A connection class whose writers queue for their turn before BEGIN IMMEDIATE and leave it
    when their transaction ends: on one lock within this process, then, for a database in a
    file, on a lock shared by every process that opens it (:class:`gateway.turns.ProcessTurns`).

    Why: a writer that finds SQLite's write lock taken waits in SQLite's busy handler, which
    sleeps 1, 2, 5, 10... up to 100 ms between tries, so that while others keep writing one
    writer can wait for seconds (``bench.write_turns``, four threads: up to 4 s). Under ``serve``
    the receiver, the worker, the preparers and the forwarder are processes writing to one file,
    and a C-STORE is answered only after its commit. Waiting on these locks instead hands the
    database over the moment it is free, to each waiter in turn. A writer of a process that
    does not take these turns (another version, a tool) still meets SQLite's own lock; so does
    one that has waited ``BUSY_SECONDS`` without its turn, which then fails as it did before.
    """
    turns = FirstComeLock()
    across = ProcessTurns(turns_file) if turns_file is not None else None

    class TakingTurns(sqlite3.Connection):
        _has_turn = False
        _has_file_turn = False

        def take_turn(self) -> None:
            deadline = time.monotonic() + BUSY_SECONDS
            self._has_turn = turns.acquire(timeout=BUSY_SECONDS)
            if self._has_turn and across is not None:
                self._has_file_turn = across.acquire(deadline)

        def end_turn(self) -> None:
            if self._has_file_turn:
                self._has_file_turn = False
                across.release()
            if self._has_turn:
                self._has_turn = False
                turns.release()

        def commit(self) -> None:
            try:
                super().commit()
            finally:
                self.end_turn()

        def rollback(self) -> None:
            try:
                super().rollback()
            finally:
                self.end_turn()

        def close(self) -> None:
            try:
                super().close()
            finally:
                self.end_turn()

    return TakingTurns


def _disable_pysqlite_autobegin(engine: Engine) -> None:
    """Let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE instead of pysqlite's own BEGIN."""

    @event.listens_for(engine, "connect")
    def _no_autobegin(dbapi_connection, _record):
        dbapi_connection.isolation_level = None


def _add_missing_columns(engine: Engine) -> None:
    with engine.begin() as conn:
        inspector = inspect(conn)
        for table in Base.metadata.sorted_tables:
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in present:
                    continue
                ddl_type = column.type.compile(dialect=engine.dialect)
                conn.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {ddl_type}'))
