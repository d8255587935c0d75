"""Real DICOM peers for the tests: Orthanc as the research archive, dcmtk as the scanner,
and the gateway itself as a separate process. All on loopback ports chosen at run time."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
import yaml

ORTHANC = shutil.which("Orthanc") or ("/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").exists() else None)
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
STORESCU = shutil.which("storescu")
ECHOSCU = shutil.which("echoscu")
ARCHIVE_USER, ARCHIVE_PASSWORD = "curator", "archive-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


#: Starts of a new Orthanc, each on ports chosen afresh, before a port taken fails the test.
PORT_ATTEMPTS = 3


class PortTaken(RuntimeError):
    """Orthanc exited at start: one of its ports was taken."""


@dataclass
class Orthanc:
    """An Orthanc server with its own storage, authentication on."""

    workdir: Path
    dicom_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    aet: str = "ARCHIVE"
    process: subprocess.Popen | None = None
    # Settings added to its configuration (e.g. LuaScripts).
    extra: dict = field(default_factory=dict)
    started_before: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> Orthanc:
        """Start Orthanc; a first start whose port another process took since ``free_port``
        chose it (nothing holds a port between the two) tries again on new ports. A restart
        keeps its ports: a gateway may already be configured with them."""
        for attempt in range(PORT_ATTEMPTS):
            try:
                return self._start()
            except PortTaken:
                if self.started_before or attempt == PORT_ATTEMPTS - 1:
                    raise
                self.dicom_port, self.http_port = free_port(), free_port()
        raise AssertionError("unreachable")

    def _start(self) -> Orthanc:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "research-archive",
            "StorageDirectory": str(self.workdir / "storage"),
            "IndexDirectory": str(self.workdir / "index"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": self.aet,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {ARCHIVE_USER: ARCHIVE_PASSWORD},
            "DicomCheckCalledAETitle": True,
            "UnknownSopClassAccepted": True,
            "OverwriteInstances": True,
            "SaveJobs": False,
            "StableAge": 1,
            "Plugins": [str(DICOMWEB_PLUGIN)] if DICOMWEB_PLUGIN.exists() else [],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
            **self.extra,
        }
        (self.workdir / "orthanc.json").write_text(json.dumps(config, indent=2))
        log = open(self.workdir / "orthanc.log", "ab")
        # --verbose: Orthanc then logs every instance it stores, which is how the tests count
        # deliveries (a resent instance overwrites the first and leaves no other trace).
        self.process = subprocess.Popen([ORTHANC, "--verbose", str(self.workdir / "orthanc.json")],
                                        stdout=log, stderr=subprocess.STDOUT)
        wait_for(self._up, 60, what="Orthanc to start")
        self.started_before = True
        return self

    def _up(self) -> bool:
        if self.process.poll() is not None:
            log = (self.workdir / "orthanc.log").read_text(errors="replace")
            if "already in use" in log.rsplit("Orthanc version:", 1)[-1]:
                raise PortTaken(str(self.workdir / "orthanc.log"))
            raise RuntimeError("Orthanc exited: see " + str(self.workdir / "orthanc.log"))
        try:
            return self.get("/system").ok
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.url + path, auth=(ARCHIVE_USER, ARCHIVE_PASSWORD), timeout=30, **kwargs)

    def instances(self) -> list[str]:
        return self.get("/instances").json()

    def instance_file(self, orthanc_id: str) -> bytes:
        return self.get(f"/instances/{orthanc_id}/file").content

    def tags(self, orthanc_id: str) -> dict:
        return self.get(f"/instances/{orthanc_id}/simplified-tags").json()

    def stores_received(self) -> int:
        """How many instances Orthanc stored, over C-STORE or STOW-RS; a resend counts again."""
        log = self.workdir / "orthanc.log"
        return log.read_text(errors="replace").count("New instance stored") if log.exists() else 0


@dataclass
class Gateway:
    """The gateway as a real process, configured through its own config.yaml."""

    workdir: Path
    destinations: list[dict] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    ae_title: str = "DEID_GW"
    settings: dict = field(default_factory=dict)
    secret: str = "test-secret-key-0123456789"
    # One receiving process unless a test asks for more (``ingest.processes``): each more costs
    # a second of start-up. None: the gateway's own default, one per core.
    receiver_processes: int | None = 1
    process: subprocess.Popen | None = None
    helpers: list[subprocess.Popen] = field(default_factory=list)

    @property
    def config_path(self) -> Path:
        return self.workdir / "config.yaml"

    def write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "ingest": {"ae_title": self.ae_title, "host": "127.0.0.1", "port": self.port,
                       "allowed_callers": [{"ae_title": "SCANNER"}, {"ae_title": "STORESCU"}]},
            "storage": {"root": str(self.workdir / "var")},
            "database": {"url": f"sqlite:///{self.workdir / 'var' / 'gateway.db'}"},
            "queue": {"stable_after": 1.5, "scan_interval": 0.3, "worker_poll_interval": 0.2,
                      "lease_seconds": 20},
            "egress": {"destinations": self.destinations, "backoff_initial": 0.5, "backoff_max": 2,
                       "poll_interval": 0.2},
            "logging": {"level": "DEBUG", "file": str(self.workdir / "gateway.log")},
        }
        if self.receiver_processes is not None:
            config["ingest"]["processes"] = self.receiver_processes
        for section, values in self.settings.items():
            config.setdefault(section, {}).update(values)
        self.config_path.write_text(yaml.safe_dump(config))
        return self.config_path

    def env(self) -> dict:
        return {**os.environ, "DEID_GATEWAY_SECRET": self.secret, "PYTHONUNBUFFERED": "1"}

    def start(self, command: str = "serve") -> Gateway:
        """Run ``command`` (serve, or receive when other parts run in processes of their own)."""
        self.write_config()
        self.process = self._popen(command)
        wait_for(self._up, 60, what="the gateway to listen")
        return self

    def spawn(self, *args: str) -> subprocess.Popen:
        """Another part in a process of its own on the same configuration (``work --role
        pixels``, ``forward``); stopped with the gateway."""
        process = self._popen(*args)
        self.helpers.append(process)
        return process

    def _popen(self, command: str, *args: str) -> subprocess.Popen:
        out = open(self.workdir / "stdout.log", "ab")
        return subprocess.Popen(
            [sys.executable, "-m", "gateway", command, "--config", str(self.config_path), *args],
            stdout=out, stderr=subprocess.STDOUT, env=self.env(), cwd=self.workdir,
        )

    def _up(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError("gateway exited:\n" + (self.workdir / "stdout.log").read_text()[-3000:])
        return port_open(self.port)

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as in a power cut of the process."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        for process in [self.process, *self.helpers]:
            if process and process.poll() is None:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "gateway", "--config", str(self.config_path), *args],
            capture_output=True, text=True, env=self.env(), cwd=self.workdir, timeout=120,
        )

    def logs(self) -> str:
        text = ""
        for name in ("gateway.log", "stdout.log"):
            path = self.workdir / name
            if path.exists():
                text += path.read_text(errors="replace")
        return text


def _association_profile(files: list[Path], folder: Path) -> Path:
    """A storescu configuration proposing each file's own transfer syntax, so compressed files
    travel as they are (storescu's flags offer one compressed family at a time)."""
    from pydicom import dcmread

    pairs = sorted({
        (str(ds.file_meta.MediaStorageSOPClassUID), str(ds.file_meta.TransferSyntaxUID))
        for ds in (dcmread(f, stop_before_pixels=True) for f in files)
    })
    syntaxes = sorted({ts for _, ts in pairs})
    lines = ["[[TransferSyntaxes]]"]
    for i, ts in enumerate(syntaxes):
        lines += [f"[TS{i}]", f"TransferSyntax1 = {ts}"]
    lines += ["[[PresentationContexts]]", "[Contexts]"]
    for n, (sop, ts) in enumerate(pairs, start=1):
        lines.append(f"PresentationContext{n} = {sop}\\TS{syntaxes.index(ts)}")
    lines += ["[[Profiles]]", "[Study]", "PresentationContexts = Contexts"]
    path = folder / "storescu.cfg"
    path.write_text("\n".join(lines) + "\n")
    return path


def storescu(port: int, files: list[Path], aet: str = "SCANNER", called: str = "DEID_GW",
             *options: str) -> subprocess.CompletedProcess:
    """dcmtk's storescu as the scanner: every file on one association, in its own transfer syntax."""
    profile = _association_profile(files, Path(files[0]).parent)
    return subprocess.run(
        [STORESCU, "-v", *options, "-aet", aet, "-aec", called, "-xf", str(profile), "Study",
         "127.0.0.1", str(port), *map(str, files)],
        capture_output=True, text=True, timeout=300,
    )


def echoscu(port: int, aet: str = "SCANNER", called: str = "DEID_GW") -> subprocess.CompletedProcess:
    return subprocess.run([ECHOSCU, "-v", "-aet", aet, "-aec", called, "127.0.0.1", str(port)],
                          capture_output=True, text=True, timeout=60)
