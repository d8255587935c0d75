"""What the gateway writes is its user's alone (files 0600, folders 0700) whatever the umask:
each writer asks for those modes itself, and the command line also narrows the umask.

The writers run in a child process started with umask 022 (the common default), so the test
process's own umask is left alone.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

WRITERS = textwrap.dedent("""
    import logging, os, sys
    from pathlib import Path
    from sqlalchemy import text
    os.umask(0o022)
    from gateway.config import load_config
    from gateway.db import Database
    from gateway.files import make_dirs_durably, make_hashed_folders, move_durably, write_durably
    from gateway.keys import load_secret
    from gateway.logs import LoggingConfig, setup_logging

    root = Path(sys.argv[1])
    db = Database(f"sqlite:///{root / 'var' / 'db' / 'gateway.db'}")
    db.create_schema()
    with db.session() as session:  # a write, so that the WAL and shared memory exist
        session.execute(text("CREATE TABLE IF NOT EXISTS t (x)"))
    connection = db.engine.connect()  # held open: SQLite keeps -wal and -shm while connected
    setup_logging(LoggingConfig(file=root / "var" / "log" / "gateway.log"))
    logging.getLogger("gateway").warning("a line")
    write_durably(root / "var" / "spool" / "ab" / "one.dcm", b"x")
    write_durably(root / "var" / "batch" / "cd" / "two.dcm", b"x", fsync=False)
    make_dirs_durably(root / "var" / "quarantine" / "ef")
    make_hashed_folders(root / "var" / "spool")
    (root / "tmp").mkdir()
    (root / "tmp" / "received").write_bytes(b"x")
    os.chmod(root / "tmp" / "received", 0o600)
    move_durably(root / "tmp" / "received", root / "var" / "outbox" / "gh" / "three.dcm")
    config = load_config(overrides={"storage": {"root": str(root / "var")}})
    load_secret(config.deid, config.storage.root)
    print("\\n".join(str(p) for p in (root / "var").rglob("*")))
""")


def _modes(paths: list[Path]) -> dict[str, str]:
    return {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in paths}


def test_everything_written_is_private_whatever_the_umask(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DEID_GATEWAY_SECRET"}
    result = subprocess.run([sys.executable, "-c", WRITERS, str(tmp_path)], capture_output=True, text=True,
                            cwd=ROOT, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    written = [Path(line) for line in result.stdout.split()]
    names = {p.name for p in written}
    assert {"gateway.db", "gateway.db-wal", "gateway.db-shm", "gateway.log", "one.dcm", "two.dcm",
            "three.dcm", "uid-secret"} <= names
    files = [p for p in written if p.is_file()]
    folders = [p for p in written if p.is_dir()] + [tmp_path / "var"]
    assert {k: v for k, v in _modes(files).items() if v != "0o600"} == {}
    assert {k: v for k, v in _modes(folders).items() if v != "0o700"} == {}


def test_an_existing_database_open_to_others_is_made_private(tmp_path):
    from gateway.db import Database

    path = tmp_path / "gateway.db"
    path.touch(mode=0o644)
    path.chmod(0o644)
    Database(f"sqlite:///{path}").dispose()
    assert oct(stat.S_IMODE(path.stat().st_mode)) == "0o600"
