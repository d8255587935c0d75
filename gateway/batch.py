"""``deid-gateway deid IN_DIR OUT_DIR``: the same pipeline over files, with no network.

Outputs are named by their de-identified UIDs (``OUT/<study>/<series>/<instance>.dcm``), so
nothing of the input's names or paths carries over. With the same key, the UIDs are the ones
the network path produces. A UID that is not a valid UID (a profile that keeps UIDs lets the
sender's through) never becomes a path: its SHA-256 names the file instead, and it is counted.

Every file is first checked as the network path checks a received instance
(:func:`gateway.ingest.validate.validate_file`, under the ``ingest`` limits), then ends written,
skipped (not DICOM), dropped by a routing rule (counted by the rule's name) or quarantined with
a reason; one bad file never stops the others. Of the rules, only
drops apply here: the profile is the command's, and there are no destinations. Outputs are
written without an fsync each, and the filesystem holding them is synced once at the end. The
command exits 0 when nothing was quarantined, 1 when something was or when the disk did not take
every output, and 2 when it could not start (a configuration error).
"""

from __future__ import annotations

import errno
import logging
import multiprocessing
import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.errors import InvalidDicomError
from pydicom.uid import UID
from tqdm import tqdm

from gateway.children import name_for_the_system
from gateway.config import ConfigError, GatewayConfig
from gateway.db import Database
from gateway.files import sha256_hex, sync_filesystem, write_durably
from gateway.ingest.validate import NO_FILE_META, InvalidInstance, validate_file
from gateway.keys import load_secret
from gateway.logs import quiet_libraries
from gateway.pipeline.build import build_pipeline
from gateway.pipeline.instance_io import check_output, encode, read_twice
from gateway.pipeline.pipeline import Pipeline
from gateway.pipeline.stage import Quarantine, contained
from gateway.rules.router import Router

log = logging.getLogger("gateway.batch")


@dataclass
class BatchResult:
    written: int = 0
    skipped: int = 0  # not DICOM
    quarantined: Counter = field(default_factory=Counter)  # reason -> count
    renamed: int = 0  # written under a hash, for a UID that could not be a file name
    dropped: Counter = field(default_factory=Counter)  # rule -> count

    def merge(self, other: BatchResult) -> None:
        self.written += other.written
        self.skipped += other.skipped
        self.quarantined.update(other.quarantined)
        self.renamed += other.renamed
        self.dropped.update(other.dropped)


_state: dict = {}


def _init(config: GatewayConfig, out_dir: Path, profile: str, device: str) -> None:
    quiet_libraries()
    if multiprocessing.parent_process() is not None:  # one of --jobs' processes
        name_for_the_system("batch")
    db = Database(config.database.url)
    secret = load_secret(config.deid, config.storage.root)
    _state["pipeline"] = build_pipeline(config, db, secret, device=device, profiles=[profile])
    _state["router"] = Router.from_config(config)
    _state["out"] = out_dir
    _state["profile"] = profile
    _state["ingest"] = config.ingest  # the limits a received instance is checked against


def _read(path: Path, result: BatchResult):
    """The file as read twice (see ``read_twice``), once it has passed the checks the network
    path makes of a received instance: a file cut short, one whose structure does not parse, or
    one declaring an image past the ``ingest`` limits is quarantined with the same reason, not
    de-identified as far as it goes."""
    try:
        validate_file(path, None, None, _state["ingest"])
        return read_twice(path)
    except InvalidInstance as refused:
        if refused.reason == NO_FILE_META:
            result.skipped += 1
        else:
            result.quarantined[refused.reason] += 1
    except (InvalidDicomError, OSError, EOFError):
        result.skipped += 1
    except BaseException as exc:  # noqa: BLE001 - this file's alone
        result.quarantined[f"unreadable ({type(contained(exc)).__name__})"] += 1
    return None


def _group(paths: list[Path], pipeline: Pipeline, out_dir: Path, profile: str) -> BatchResult:
    """Read a few files, let the pipeline detect their text together, then finish each."""
    result = BatchResult()
    pairs = [pair for pair in (_read(path, result) for path in paths) if pair is not None]
    pairs = [pair for pair in pairs if not _dropped(pair[0], result)]
    prepared = pipeline.prepare([working for _, working in pairs]) if len(pairs) > 1 else [{}] * len(pairs)
    for (original, working), ahead in zip(pairs, prepared, strict=True):
        result.merge(_one(original, working, ahead, pipeline, out_dir, profile))
    return result


def _dropped(original, result: BatchResult) -> bool:
    """Whether a routing rule drops this file (counted by the rule's name); the rules see the
    header as read, and no sender."""
    try:
        decision = _state["router"].decide(original)
    except Quarantine as q:
        result.quarantined[q.reason] += 1
        return True
    if decision.drop:
        result.dropped[decision.rule] += 1
    return decision.drop


def _one(original, working, prepared, pipeline: Pipeline, out_dir: Path, profile: str) -> BatchResult:
    result = BatchResult()
    try:
        (out,) = pipeline.run(original, [profile], working=working, prepared=prepared)
        check_output(original, out)
        data = encode(out.dataset)
        target, result.renamed = output_path(out_dir, out.dataset)
    except Quarantine as q:
        result.quarantined[q.reason] += 1
        return result
    except BaseException as exc:  # noqa: BLE001 - whatever it is, it is this file's alone
        result.quarantined[f"internal error ({type(contained(exc)).__name__})"] += 1
        return result
    write_durably(target, data, fsync=False)
    result.written += 1
    return result


def output_path(out_dir: Path, ds) -> tuple[Path, int]:
    """``out_dir/<study>/<series>/<instance>.dcm`` from the output's UIDs, each that is not a
    valid UID replaced by its SHA-256; returns the path and how many were replaced. The path
    always lies under ``out_dir``."""
    parts, renamed = [], 0
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        value = str(ds.get(keyword, "") or "")
        if not UID(value).is_valid:
            value, renamed = sha256_hex(value.encode("utf-8", "replace")), renamed + 1
        parts.append(value)
    target = out_dir.joinpath(*parts[:2], f"{parts[2]}.dcm")
    if not target.resolve().is_relative_to(out_dir.resolve()):  # cannot happen with the digits and dots above
        raise Quarantine("output path would leave the output folder")
    return target, renamed


def _worker(paths: list[Path]) -> BatchResult:
    return _group(paths, _state["pipeline"], _state["out"], _state["profile"])


def deidentify_folder(config: GatewayConfig, in_dir: Path, out_dir: Path, profile: str | None = None,
                      jobs: int = 1, device: str = "auto", progress: bool = True) -> BatchResult:
    profile = profile or config.deid.profile
    if profile not in config.deid.profiles:
        raise ConfigError(f"unknown de-identification profile {profile!r}; known: {sorted(config.deid.profiles)}")
    files = sorted(p for p in Path(in_dir).rglob("*") if p.is_file())
    db = Database(config.database.url)
    db.create_schema()
    db.dispose()
    total = BatchResult()
    size = config.pixels.batch_instances if config.pixels.enabled else 1
    groups = [files[i:i + size] for i in range(0, len(files), size)]
    bar = tqdm(total=len(files), unit="file", disable=not progress, desc="de-identifying")
    if jobs <= 1:
        _init(config, out_dir, profile, device)
        for group in groups:
            total.merge(_worker(group))
            bar.update(len(group))
    else:
        with ProcessPoolExecutor(jobs, initializer=_init, initargs=(config, out_dir, profile, device)) as pool:
            for group, part in zip(groups, pool.map(_worker, groups), strict=True):
                total.merge(part)
                bar.update(len(group))
    bar.close()
    try:
        if Path(out_dir).exists():  # else nothing was written
            sync_filesystem(out_dir)
    except OSError as exc:
        raise OutputsNotWritten(errno.errorcode.get(exc.errno, "error")) from exc
    return total


class OutputsNotWritten(Exception):
    """The disk did not take every output: ``str()`` is the error's code (``EIO``), never a path
    or a value. The files may be incomplete; the run should be repeated once the disk is fixed."""


def default_jobs(config: GatewayConfig, device: str = "auto") -> int:
    """One process per CPU; one in all when the pixel stage runs on a GPU, which every process
    would otherwise fill with its own copy of the models."""
    if config.pixels.enabled and device != "cpu":
        from gateway.pixels.finders import resolve_device

        if resolve_device(device if device != "auto" else config.pixels.device) == "cuda":
            return 1
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
