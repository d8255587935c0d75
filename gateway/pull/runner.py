"""Running a pull: each requested item queried, then each of its studies retrieved, a few items
at a time, with a progress bar; stopped cleanly on request and resumed by running it again.

The retrieved instances arrive through the gateway's receiver (C-MOVE: the PACS connects to
it; C-GET: on the pull's own association, handed to the receiver's C-STORE handling), so they
are queued, matched against the rules and de-identified like any other. Every step is
committed before the next begins: a crash or a stop loses at most the retrieve in flight,
which the next run does again (the receiver recognises instances it already holds).
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from tqdm import tqdm

from gateway.pull import dimse
from gateway.pull.requests import PullRequest
from gateway.pull.state import PullState, study_key
from gateway.queue.tables import PullItemState


@dataclass
class PullSummary:
    run_id: int
    resumed: bool
    done_before: int  # items that had their outcome before this run started
    counts: Counter  # items by state, at the end
    stopped: bool


class Puller:
    """Pulls request lists from one source of ``config.pull`` into the gateway."""

    def __init__(self, config, db, secret: bytes, source: str | None = None, find_only: bool = False,
                 actor: str = "operator"):
        self.config = config
        self.source = config.pull.source(source)  # ValueError naming what is missing
        dimse.tls_args(self.source)  # ConfigError now, rather than one failure per item
        self.calling_ae = self.source.calling_ae_title or config.ingest.ae_title
        self.destination = config.pull.move_destination or config.ingest.ae_title
        self.find_only = find_only
        self.state = PullState(db, secret, actor)
        self.db, self.secret = db, secret
        self.tracker = dimse.Tracker()
        self.stop = threading.Event()
        self._receiver = None
        self._receiver_lock = threading.Lock()

    def halt(self) -> None:
        """Stop: no new step starts, and open associations are aborted (their step is redone
        by the next run)."""
        self.stop.set()
        self.tracker.abort_all()

    def run(self, kind: str, requests: list[PullRequest], progress: bool = True) -> PullSummary:
        run_id, resumed = self.state.open_run(self.source.name, kind, requests)
        todo = self.state.todo(run_id, self.find_only)
        by_line = {request.line: request for request in requests}
        bar = tqdm(total=len(requests), initial=len(requests) - len(todo), unit="item", disable=not progress,
                   desc="finding" if self.find_only else "pulling")
        pool = ThreadPoolExecutor(self.config.pull.max_concurrent, thread_name_prefix="pull")
        futures = [pool.submit(self._item, run_id, item_id, by_line[line]) for line, item_id in todo.items()]
        try:
            for future in as_completed(futures):
                future.result()
                bar.update(1)
        except KeyboardInterrupt:
            self.halt()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            bar.close()
        return PullSummary(run_id, resumed, len(requests) - len(todo), self.state.close(run_id), self.stop.is_set())

    def _item(self, run_id: int, item_id: int, request: PullRequest) -> None:
        """Query, then retrieve what was found; the item's outcome is recorded and audited. A
        stop leaves it where it was, for the next run."""
        if self.stop.is_set():
            return
        self.state.begin(item_id)
        try:
            outcome, reason = self._query_and_retrieve(item_id, request)
        except dimse.PullError as failure:
            outcome, reason = PullItemState.FAILED, failure.reason
        except Exception as exc:  # noqa: BLE001 - this item's alone; the message may quote a value
            outcome, reason = PullItemState.FAILED, f"internal error ({type(exc).__name__})"
        if outcome is not None and not self.stop.is_set():
            self.state.finish(run_id, item_id, outcome, reason)

    def _query_and_retrieve(self, item_id: int, request: PullRequest) -> tuple[str | None, str | None]:
        studies = dimse.find_studies(self.source, self.calling_ae, request.identifiers, self.tracker)
        if not studies:
            return PullItemState.NOT_FOUND, None
        by_key = {study_key(self.secret, study.uid): study for study in studies}
        done = self.state.found(item_id, list(by_key))
        if self.find_only:
            return PullItemState.FOUND, None
        failures = []
        for key, study in by_key.items():
            if key in done:
                continue  # retrieved by an earlier run of this pull
            if self.stop.is_set():
                return None, None
            retrieved = self._retrieve(study)
            self.state.retrieved(item_id, key, retrieved)
            if not retrieved.whole:
                failures.append(retrieved.status_text)
        if failures:
            return PullItemState.FAILED, f"retrieve incomplete ({failures[0]})"
        return PullItemState.RETRIEVED, None

    def _retrieve(self, study: dimse.FoundStudy) -> dimse.Retrieved:
        if self.source.retrieve == "move":
            return dimse.move_study(self.source, self.calling_ae, self.destination, study.uid, self.tracker)
        return dimse.get_study(self.source, self.calling_ae, study.uid, list(study.sop_classes), self._receiving(),
                               self.tracker)

    def _receiving(self):
        """For C-GET: the gateway's own C-STORE handling, made once (a retrieve at a time may
        use it from each thread; it keeps its state per association)."""
        with self._receiver_lock:
            if self._receiver is None:
                from gateway.ingest.handlers import Receiver

                self._receiver = Receiver(self.config.ingest, self.config.storage, self.db, self.secret)
            return self._receiver
