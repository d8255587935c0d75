"""Group commit: the instances that arrive on concurrent associations made durable together.

Recording one instance costs three waits for the disk: its file, the folder it is renamed into,
and the database commit. Each association's handler still syncs its own file (in parallel with
the others: ``fsync`` lets go of the GIL). Then one of the waiting handlers, the leader, takes
every instance waiting at that moment, renames them all into one spool folder (chosen by the
first one's digest, so the names stay the spool's ``ab/abcdef….dcm``), syncs that folder once,
writes every row in one transaction and commits it once, and only then answers them all. An
instance is still durable — bytes, name and row — before its sender hears "success"; a batch
only shares the waits. One association alone gets a batch of one, committed in its own thread
as before, with no hand-over to another thread.

While a leader commits, instances arriving meanwhile wait; when it is done it hands the lead to
the first of them, which takes them all as the next batch. No thread of its own runs, so the
receiver needs no start or shutdown step for it.

When anything of a batch fails, the instances it concerns are answered with the error, never
with success: a folder that cannot be synced fails every instance renamed into it, a commit that
fails (a full disk, a database gone) fails every instance of the batch, and a row that cannot be
written (in its own savepoint) fails that instance alone. Files renamed for instances that were
not recorded are removed again.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gateway.db import Database
from gateway.files import fsync_dir, make_dirs_durably
from gateway.ingest.validate import InstanceHeader
from gateway.queue.intake import Arrival, Recorded, register_arrivals

log = logging.getLogger("gateway.ingest")


@dataclass
class _Waiting:
    """One instance waiting for its batch: its synced file in the receiving folder, its facts."""

    source: Path
    header: InstanceHeader
    sha256: str
    size: int
    calling_ae: str
    calling_address: str | None
    done: threading.Event = field(default_factory=threading.Event)  # answered, or handed the lead
    leads: bool = False
    target: Path | None = None
    moved: bool = False  # renamed into the spool by this batch (else a copy was already there)
    recorded: Recorded | None = None
    error: BaseException | None = None

    def arrival(self) -> Arrival:
        return Arrival(self.header, self.target, self.sha256, self.size, self.calling_ae, self.calling_address)


class GroupCommitter:
    """Records received instances in batches; :meth:`record` returns once its instance is durable."""

    def __init__(self, db: Database, secret: bytes, spool: Path, max_batch: int = 64,
                 on_committed: Callable[[], object] | None = None):
        self.db, self.secret, self.spool = db, secret, spool
        self.max_batch = max_batch
        self.on_committed = on_committed  # after each batch: instances wait for the preparers
        self.batches = 0  # committed so far (how much sharing happened, for tests and benchmarks)
        self._waiting: list[_Waiting] = []
        self._lock = threading.Lock()
        self._leading = False  # a batch is being committed

    @property
    def queued(self) -> int:
        """Instances waiting for the next batch (the one being committed not counted)."""
        with self._lock:
            return len(self._waiting)

    @property
    def active(self) -> bool:
        """Whether a batch is being committed."""
        with self._lock:
            return self._leading

    def record(self, source: Path, header: InstanceHeader, sha256: str, size: int, calling_ae: str,
               calling_address: str | None = None) -> Recorded:
        """Move ``source`` (complete and fsynced) into the spool and commit its row; raises what
        made that impossible (``OSError`` for the files, anything else from the database).
        ``source`` is left in place when the spool already holds the same bytes."""
        waiting = _Waiting(source, header, sha256, size, calling_ae, calling_address)
        with self._lock:
            self._waiting.append(waiting)
            waiting.leads, self._leading = not self._leading, True
        while not waiting.leads:
            waiting.done.wait()
            if waiting.recorded is not None or waiting.error is not None:
                break
        if waiting.leads:
            self._lead()
        if waiting.error is not None:
            raise waiting.error
        return waiting.recorded

    def _lead(self) -> None:
        """Commit what is waiting (the leader's own instance first), then hand the lead on."""
        with self._lock:
            batch, self._waiting = self._waiting[:self.max_batch], self._waiting[self.max_batch:]
        try:
            self._commit(batch)
        except BaseException as exc:  # never leave a sender waiting, nor answer it success
            for waiting in batch:
                if waiting.recorded is None and waiting.error is None:
                    waiting.error = exc
        finally:
            try:
                self._finish(batch)
            finally:
                self._hand_on()

    def _hand_on(self) -> None:
        """Make the first instance that arrived meanwhile the next leader, if any did."""
        with self._lock:
            if self._waiting:
                self._waiting[0].leads = True
                self._waiting[0].done.set()
            else:
                self._leading = False

    def _commit(self, batch: list[_Waiting]) -> None:
        durable = self._move(batch)
        if not durable:
            return
        try:
            with self.db.session() as session:
                results = register_arrivals(session, self.secret, [waiting.arrival() for waiting in durable])
        except Exception as exc:  # the transaction or its commit: nothing of the batch is recorded
            log.error("cannot commit received instances: %s", type(exc).__name__)
            for waiting in durable:
                waiting.error = exc
            return
        for waiting, result in zip(durable, results):
            if isinstance(result, Exception):  # its rows alone were rolled back
                log.error("cannot record a received instance: %s", type(result).__name__)
                waiting.error = result
            else:
                waiting.recorded = result
        self.batches += 1
        if self.on_committed is not None:
            try:
                self.on_committed()
            except Exception as exc:  # the batch is recorded: its senders still hear "success"
                log.error("cannot wake the preparers: %s", type(exc).__name__)

    def _move(self, batch: list[_Waiting]) -> list[_Waiting]:
        """Rename the batch's files into one spool folder and sync it; returns those now durable
        there (the others carry their error)."""
        folder = self.spool / batch[0].sha256[:2]
        try:
            make_dirs_durably(folder)
        except OSError as exc:
            for waiting in batch:
                waiting.error = exc
            return []
        for waiting in batch:
            waiting.target = folder / f"{waiting.sha256}.dcm"
            try:
                if not waiting.target.exists():  # else that file already holds these very bytes
                    os.replace(waiting.source, waiting.target)
                    waiting.moved = True
            except OSError as exc:
                waiting.error = exc
        durable = [waiting for waiting in batch if waiting.error is None]
        try:
            fsync_dir(folder)
        except OSError as exc:  # no name in it is known to be durable
            for waiting in durable:
                waiting.error = exc
            return []
        return durable

    def _finish(self, batch: list[_Waiting]) -> None:
        """Remove what no row names — files renamed for instances not recorded, or duplicates of
        a copy kept elsewhere, and superseded versions — then answer every sender."""
        kept = {waiting.recorded.kept_at for waiting in batch if waiting.recorded is not None}
        for waiting in batch:
            try:
                unreferenced = [str(waiting.target)] if waiting.moved else []
                if waiting.recorded is not None:
                    unreferenced += waiting.recorded.superseded
                for path in unreferenced:
                    if path not in kept:  # a row of this batch may name it: then it stays
                        Path(path).unlink(missing_ok=True)
            except OSError as exc:  # a file left over costs space, never an instance
                log.warning("cannot remove an unreferenced spool file: %s", type(exc).__name__)
            finally:
                waiting.done.set()
