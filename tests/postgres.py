"""A throwaway PostgreSQL server for the tests, from Debian's packages, on a loopback port."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.peers import free_port, port_open, wait_for


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _as_postgres(args: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; Debian's package makes a "postgres" user for it.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


class PostgresServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pg-"))
        self.process: subprocess.Popen | None = None

    @staticmethod
    def available() -> bool:
        if not (_bin("initdb") and _bin("postgres")):
            return False
        if os.geteuid() == 0:
            return subprocess.run(["id", "postgres"], capture_output=True).returncode == 0
        return True

    def start(self) -> PostgresServer:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        data = self.dir / "data"
        subprocess.run(_as_postgres([_bin("initdb"), "-D", str(data), "-U", "gateway", "--auth=trust"]),
                       check=True, capture_output=True)
        self.process = subprocess.Popen(
            _as_postgres([_bin("postgres"), "-D", str(data), "-p", str(self.port), "-h", "127.0.0.1",
                          "-k", str(self.dir), "-c", "fsync=off"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: port_open(self.port), 30, what="PostgreSQL to start")
        subprocess.run(_as_postgres([_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                                     "-U", "gateway", "gateway"]), check=True, capture_output=True)
        return self

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://gateway@127.0.0.1:{self.port}/gateway"

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(30)
        shutil.rmtree(self.dir, ignore_errors=True)
