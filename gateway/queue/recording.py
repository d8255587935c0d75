"""Recording what queue consumers finish, several items per transaction: the worker's outputs
(written to the outbox first) and the forwarder's answers from archives.

Why batches: recorded one by one, every instance cost a commit (an fsync of the database's
log, and with SQLite its one write lock, which the receiver and the forwarder want at the same
moment) and an fsync of the folder its file was renamed into. Here one thread takes whatever
instances the worker has de-identified meanwhile, writes and fsyncs their files (two at a time),
fsyncs each folder they went into once, and records them all in one transaction. An instance
counts as processed only once that transaction commits, so durability is what it was.

The forwarder records the archive's answers the same way (entries without files): the next
instance is sent while the answers before it are committed. They come one at a time, so the
forwarder's recorder lingers a little after the first (``linger``) to take several at once.

A failure fails the whole batch, as one instance's failure failed its job before: the job is
tried again, and nothing of the batch is recorded. Memory stays bounded: :meth:`submit` waits
while the outputs queued or being recorded would pass ``max_bytes`` (an instance always goes in
when nothing else is waiting, whatever its size).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.files import fsync_dir, write_durably

#: At most this many instances in one transaction: a batch's instances are answered together.
MAX_INSTANCES = 32
#: Bytes of outputs waiting to be written before the worker is held up.
MAX_BYTES = 16 * 1024 * 1024
WRITERS = 2  # files written (and fsynced) at once: the disk waits overlap


@dataclass
class _Queued:
    entry: Any  # what ``record`` needs of the instance
    files: list[tuple[Path, bytes]]
    future: Future = field(default_factory=Future)

    @property
    def size(self) -> int:
        return sum(len(data) for _, data in self.files)


class BatchRecorder:
    """Writes queued outputs and hands their entries to ``record`` in batches.

    ``record(entries)`` runs in one transaction of its own and returns one result per entry;
    each :meth:`submit`'s future gets its entry's result, or the batch's exception.
    """

    def __init__(self, record: Callable[[list[Any]], list[Any]], *, max_instances: int = MAX_INSTANCES,
                 max_bytes: int = MAX_BYTES, linger: float = 0.0):
        self.record = record
        self.max_instances = max_instances
        self.max_bytes = max_bytes
        self.linger = linger
        self._queue: deque[_Queued] = deque()
        self._queued_bytes = 0
        self._closing = False
        self._changed = threading.Condition()
        self._writers = ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="outbox-writer")
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    def __enter__(self) -> BatchRecorder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def submit(self, entry: Any, files: list[tuple[Path, bytes]]) -> Future:
        """Queue an instance's output files and its entry; the future resolves once recorded."""
        queued = _Queued(entry, files)
        with self._changed:
            self._changed.wait_for(lambda: self._room_for(queued.size))
            self._queue.append(queued)
            self._queued_bytes += queued.size
            self._changed.notify_all()
        return queued.future

    def _room_for(self, size: int) -> bool:
        return not self._queued_bytes or self._queued_bytes + size <= self.max_bytes

    def close(self) -> None:
        """Record what is queued, then stop."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._thread.join()
        self._writers.shutdown()

    # -- the recording thread --------------------------------------------------------------------
    def _run(self) -> None:
        while batch := self._take():
            try:
                self._write(batch)
                results = self.record([queued.entry for queued in batch])
            except BaseException as exc:  # noqa: BLE001 - handed to every waiting instance
                for queued in batch:
                    queued.future.set_exception(exc)
            else:
                for queued, result in zip(batch, results, strict=True):
                    queued.future.set_result(result)
            finally:
                with self._changed:
                    self._queued_bytes -= sum(queued.size for queued in batch)
                    self._changed.notify_all()

    def _take(self) -> list[_Queued]:
        """The instances queued now (at least one), or none once closing with nothing left;
        with ``linger``, those queued within that many seconds of the first."""
        with self._changed:
            self._changed.wait_for(lambda: self._queue or self._closing)
            if self.linger:
                self._changed.wait_for(lambda: len(self._queue) >= self.max_instances or self._closing,
                                       timeout=self.linger)
            batch = []
            while self._queue and len(batch) < self.max_instances:
                batch.append(self._queue.popleft())
            return batch

    def _write(self, batch: list[_Queued]) -> None:
        """Every file of the batch durable: written and fsynced, renamed, its folder fsynced."""
        files = [item for queued in batch for item in queued.files]
        list(self._writers.map(lambda item: write_durably(*item, sync_folder=False), files))  # raises the first failure
        for folder in dict.fromkeys(path.parent for path, _ in files):
            fsync_dir(folder)
