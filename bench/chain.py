"""Instances per second through the whole chain: scanner -> gateway -> research archive.

Runs, in one go on the same generated study (CT, 512x512, 16 bit, 0.5 MB an instance): dcmtk's
storescu straight into Orthanc (the peer: what the network and the archive cost alone), then
storescu into ``deid-gateway serve`` forwarding to Orthanc, with the pixel stage on and off. Each
measurement starts its peers afresh and times from the start of storescu until the archive holds
every instance. The paths take turns to go first from one round to the next.

``TCP_NODELAY=1`` is set in this process's environment, which every peer inherits: dcmtk (storescu,
and Orthanc, built on dcmtk) stalls on delayed ACKs without it. The gateway's quiet time
(``queue.stable_after``) is set small, reported, and subtracted, since it is a policy, not work.

Prints the median instances/s of each path and its ratio to the direct send in the same run, the
gateway's peak RSS (its whole process tree, sampled), and the seconds from the last instance
acknowledged by the gateway to the last one the archive holds; then where the gateway's time
went, from the timestamps in its database (:data:`PHASES`).

    .venv/bin/python -m bench.chain --instances 300 --rounds 3
    .venv/bin/python -m bench.chain --instances 1000 --text-every 5 --rounds 1 --paths on   # latency
    .venv/bin/python -m bench.chain --instances 3000 --rounds 1 --paths on                  # memory
    .venv/bin/python -m bench.chain --instances 1200 --studies 6 --paths direct off          # a worklist

``--baseline-tree DIR`` adds the paths ``off-baseline`` and ``on-baseline``: the gateway of another
source tree (``git archive HEAD | tar -x -C DIR`` gives the one before uncommitted changes) in
the same rounds, for a before/after on a machine whose speed drifts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pydicom.uid import generate_uid

from tests.peers import STORESCU, Gateway, Orthanc, wait_for
from tests.pixels.synth import make_mono

STABLE_AFTER = 0.3
os.environ["TCP_NODELAY"] = "1"  # inherited by storescu and Orthanc (dcmtk inside)


def make_study(folder: Path, count: int, text_every: int = 0, studies: int = 1) -> list[Path]:
    """``count`` CT instances of one study, 512x512, 12 bits stored in 16; text burned into every
    ``text_every``-th one (none with 0). Pixels from pinned seeds; UIDs new at every call, so
    that each call makes a new study (``bench.kills`` sends one per round). With ``studies``
    above 1, the instances are that many studies of equal size, one after the other, as a PACS
    sends a worklist."""
    folder.mkdir(parents=True, exist_ok=True)
    variants = {}
    files = []
    for n in range(count):
        if n % -(-count // studies) == 0:
            study, series = generate_uid(), generate_uid()
        text = bool(text_every) and n % text_every == text_every - 1
        key = (n % 8, text)
        if key not in variants:
            variants[key] = make_mono(bits=16, bits_stored=12, rows=512, cols=512, text=text, seed=key[0],
                                      modality="CT").ds
        ds = variants[key]
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.PatientName, ds.PatientID = "BENCH^PATIENT", "BENCH-37"
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = n + 1
        files.append(folder / f"{n:05d}.dcm")
        ds.save_as(files[-1], enforce_file_format=True)
    return files


def send(port: int, called: str, files: list[Path]) -> float:
    """storescu over one association; returns when it exits (every instance acknowledged)."""
    result = subprocess.run([STORESCU, "-aet", "STORESCU", "-aec", called, "127.0.0.1", str(port),
                             *map(str, files)], capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"storescu failed: {result.stderr[-500:]}")
    return time.perf_counter()


#: The parts of ``serve`` that run in processes of their own, by the names ``gateway.children``
#: gives them (``deid-receiver-2`` is a receiver); the first process, ``serve``, receives too and
#: runs the scheduler.
PARTS = ("serve", "receiver", "preparer", "worker", "forwarder")


def part_of(name: str) -> str:
    """The part a child process named ``name`` runs, or "other" (multiprocessing's helper)."""
    part = name.removeprefix("deid-").rstrip("-0123456789")
    return part if name.startswith("deid-") and part in PARTS else "other"


class TreeRss:
    """Peak resident memory of a process and all its children, summed, sampled every 50 ms; and
    the CPU seconds they used meanwhile (each process's last sample), which, unlike seconds on
    the clock, barely moves with what else the machine is doing."""

    def __init__(self, pid: int):
        import psutil

        self.root = psutil.Process(pid)
        self.peak = 0.0
        self._cpu_at_start: dict[int, float] = {}
        self._cpu: dict[int, float] = {}
        self._parts: dict[int, str] = {}  # pid -> the part of the gateway it runs (see part_of)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeRss:
        self._cpu_at_start = self._cpu_now()
        self._thread.start()
        return self

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu_by_part.values())

    @property
    def cpu_by_part(self) -> dict[str, float]:
        """CPU seconds of each part (the processes of one part added up)."""
        parts: dict[str, float] = {}
        for pid, seconds in self._cpu.items():
            part = self._parts.get(pid, "other")
            parts[part] = parts.get(part, 0.0) + seconds - self._cpu_at_start.get(pid, 0.0)
        return parts

    def _cpu_now(self) -> dict[int, float]:
        import psutil

        seconds = {}
        for process in [self.root, *self.root.children(recursive=True)]:
            try:
                times = process.cpu_times()
                seconds[process.pid] = times.user + times.system
                if self._parts.get(process.pid, "other") == "other":  # a child names itself once started
                    self._parts[process.pid] = "serve" if process.pid == self.root.pid else part_of(process.name())
            except psutil.NoSuchProcess:
                pass
        return seconds

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psutil

        while not self._stop.wait(0.05):
            total = 0
            try:
                self._cpu.update(self._cpu_now())
                for process in [self.root, *self.root.children(recursive=True)]:
                    try:
                        total += process.memory_info().rss
                    except psutil.NoSuchProcess:
                        pass
            except psutil.NoSuchProcess:
                return
            self.peak = max(self.peak, total / 2**20)


@dataclass
class Run:
    seconds: float
    tail: float = 0.0  # last acknowledged by the gateway -> last held by the archive
    rss: float = 0.0
    cpu: float = 0.0  # CPU seconds of the gateway's processes
    cpu_by_part: dict[str, float] | None = None  # the same, for each of PARTS
    phases: dict[str, float] | None = None  # see PHASES
    # Jobs the gateway made. With one study, more than one means that the study fell quiet for
    # ``stable_after`` while it was still arriving (a loaded receiver can pause that long), and the
    # rest came as a follow-up job: part of the work then ran before the last instance, and the
    # tail after it is not comparable with a run that made one.
    jobs: int = 0


#: Where a gateway's time goes, from the timestamps its database keeps (seconds): receiving (the
#: first instance recorded to the last), the wait for the study's job (quiet time and scheduler
#: tick), the job (its start to its last output recorded; with the pixel stage, what preparers
#: left undone shows here as a later start), and the forwarder's drain after the last output.
PHASES = {
    "receive": ("SELECT min(received_at) FROM instances", "SELECT max(received_at) FROM instances"),
    "to job": ("SELECT max(received_at) FROM instances", "SELECT min(created_at) FROM jobs"),
    "job": ("SELECT min(created_at) FROM jobs", "SELECT max(created_at) FROM outputs"),
    "drain": ("SELECT max(created_at) FROM outputs", "SELECT max(delivered_at) FROM deliveries"),
}


def phases(database: Path) -> tuple[dict[str, float], int]:
    """The seconds of each of :data:`PHASES` in a gateway's SQLite database, read-only, and the
    number of jobs it made (see :attr:`Run.jobs`)."""
    import sqlite3

    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        def seconds(start: str, end: str) -> float:
            row = connection.execute(f"SELECT (julianday(({end})) - julianday(({start}))) * 86400").fetchone()
            return row[0] or 0.0

        jobs = connection.execute("SELECT count(*) FROM jobs").fetchone()[0]
        return {name: seconds(start, end) for name, (start, end) in PHASES.items()}, jobs


def direct(root: Path, files: list[Path]) -> Run:
    archive = Orthanc(root / "direct").start()
    try:
        start = time.perf_counter()
        acknowledged = send(archive.dicom_port, archive.aet, files)
        wait_for(lambda: len(archive.instances()) == len(files), 1800, interval=0.05)
        end = time.perf_counter()
        return Run(end - start, end - acknowledged)
    finally:
        archive.stop()


def through_gateway(root: Path, files: list[Path], pixels: bool, associations: int | None,
                    tree: Path | None = None) -> Run:
    archive = Orthanc(root / "archive").start()
    destination = {"name": "archive", "ae_title": archive.aet, "host": "127.0.0.1", "port": archive.dicom_port}
    if associations is not None:
        destination["associations"] = associations
    gateway = Gateway(root / "gateway", destinations=[destination],
                      settings={"queue": {"stable_after": STABLE_AFTER, "scan_interval": 0.1},
                                "pixels": {"enabled": pixels, "device": "cpu"},
                                "logging": {"level": "WARNING"}},
                      receiver_processes=None)  # the shipped default: one per core
    if tree is not None:
        env = gateway.env()
        gateway.env = lambda: {**env, "PYTHONPATH": str(tree)}
    gateway.start()
    try:
        with TreeRss(gateway.process.pid) as rss:
            start = time.perf_counter()
            acknowledged = send(gateway.port, gateway.ae_title, files)
            wait_for(lambda: len(archive.instances()) == len(files), 3600, interval=0.1)
            end = time.perf_counter()
        spent, jobs = phases(gateway.workdir / "var" / "gateway.db")
        return Run(end - start - STABLE_AFTER, end - acknowledged - STABLE_AFTER, rss.peak, rss.cpu_seconds,
                   rss.cpu_by_part, spent, jobs)
    finally:
        gateway.stop()
        archive.stop()


PATHS = {"direct": "storescu -> Orthanc", "off": "gateway, pixel stage off", "on": "gateway, pixel stage on",
         "off-baseline": "baseline, pixel stage off", "on-baseline": "baseline, pixel stage on"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--text-every", type=int, default=0, help="burn text into every n-th instance")
    parser.add_argument("--studies", type=int, default=1, help="split the instances into this many studies")
    parser.add_argument("--paths", nargs="+", choices=list(PATHS), default=["direct", "off", "on"])
    parser.add_argument("--associations", type=int, default=None,
                        help="egress associations per destination (the gateway's default if unset)")
    parser.add_argument("--baseline-tree", type=Path, help="adds off-baseline and on-baseline (see above)")
    args = parser.parse_args()
    if args.baseline_tree and not any(path.endswith("baseline") for path in args.paths):
        args.paths += [f"{path}-baseline" for path in args.paths if path != "direct"]
    runs: dict[str, list[Run]] = {path: [] for path in args.paths}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = make_study(root / "study", args.instances, args.text_every, args.studies)
        for r in range(args.rounds):
            order = args.paths[r % len(args.paths):] + args.paths[:r % len(args.paths)]
            for path in order:
                where = root / f"r{r}-{path}"
                tree = args.baseline_tree.resolve() if path.endswith("baseline") else None
                run = direct(where, files) if path == "direct" else through_gateway(
                    where, files, path.startswith("on"), args.associations, tree)
                runs[path].append(run)
                print(f"round {r} {PATHS[path]}: {args.instances / run.seconds:.1f}/s, tail {run.tail:.2f} s, "
                      f"rss {run.rss:.0f} MiB, cpu {1000 * run.cpu / args.instances:.1f} ms/instance"
                      + (f", {run.jobs} jobs" if path != "direct" else ""), flush=True)
    text = f", text in every {args.text_every}th" if args.text_every else ", no text"
    text += f", {args.studies} studies one after the other" if args.studies > 1 else ""
    print(f"\n{args.instances} CT instances 512x512 16 bit{text}; {args.rounds} rounds, medians; "
          f"stable_after {STABLE_AFTER} s subtracted; TCP_NODELAY=1")
    reference = statistics.median(len(files) / r.seconds for r in runs["direct"]) if "direct" in runs else None
    print(f"| {'path':<26} | inst/s | range | ratio to direct | ack->archived s | peak RSS MiB | CPU ms/instance |")
    print("|---|---|---|---|---|---|---|")
    for path, done in runs.items():
        rates = [len(files) / r.seconds for r in done]
        median = statistics.median(rates)
        ratio = f"{median / reference:.2f}x" if reference else "-"
        rss = f"{max(r.rss for r in done):.0f}" if path != "direct" else "-"
        cpu = f"{1000 * statistics.median(r.cpu for r in done) / len(files):.1f}" if path != "direct" else "-"
        print(f"| {PATHS[path]:<26} | {median:.1f} | {min(rates):.1f}-{max(rates):.1f} | {ratio} | "
              f"{statistics.median(r.tail for r in done):.2f} | {rss} | {cpu} |")
    print_cpu_by_part(runs, len(files))
    if args.studies == 1:  # with several, the phases of one study overlap those of the next
        print_phases(runs)


def print_cpu_by_part(runs: dict[str, list[Run]], instances: int) -> None:
    """Medians of each part's CPU per instance: what to scale from on a machine with more cores."""
    print(f"\nCPU ms per instance, each part of the gateway (medians): {', '.join(PARTS)}, other")
    print(f"| {'path':<26} | " + " | ".join(PARTS) + " | other |")
    print("|---|" + "---|" * (len(PARTS) + 1))
    for path, done in runs.items():
        if path != "direct":
            cells = [f"{1000 * statistics.median(r.cpu_by_part.get(part, 0.0) for r in done) / instances:.1f}"
                     for part in (*PARTS, "other")]
            print(f"| {PATHS[path]:<26} | " + " | ".join(cells) + " |")


def print_phases(runs: dict[str, list[Run]]) -> None:
    """Medians of :data:`PHASES` for each gateway path."""
    print(f"\nwhere the gateway's time goes, s (medians): {', '.join(PHASES)}; and the rounds whose study "
          "fell quiet while still arriving (more than one job, see Run.jobs)")
    print(f"| {'path':<26} | " + " | ".join(PHASES) + " | split rounds |")
    print("|---|" + "---|" * (len(PHASES) + 1))
    for path, done in runs.items():
        if path != "direct":
            cells = [f"{statistics.median(r.phases[name] for r in done):.2f}" for name in PHASES]
            cells.append(f"{sum(r.jobs > 1 for r in done)} of {len(done)}")
            print(f"| {PATHS[path]:<26} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
