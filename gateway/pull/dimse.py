"""The gateway as a query/retrieve SCU: C-FIND (study root) for a request's studies, then
C-MOVE of each study to the gateway's own AE, or C-GET.

Nothing here logs, and no reason returned quotes a value: a status is named by its code.
Every association is handed to ``tracker`` while it is open, so that a stop can abort it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

from pydicom import Dataset
from pynetdicom import AE, StoragePresentationContexts, build_role, evt
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from gateway import reactors, tls
from gateway.pull.config import PullSource
from gateway.sockets import NO_DELAY

PENDING = (0xFF00, 0xFF01)
#: A retrieve that ended with one of these kept every instance it reports as completed.
FINISHED = (0x0000, 0xB000)
MAX_GET_CONTEXTS = 120
#: Offered for a C-GET when the PACS did not say which SOP classes the study holds.
_COMMON_STORAGE = [context.abstract_syntax for context in StoragePresentationContexts]


class PullError(Exception):
    """The PACS could not be asked or answered with a failure; ``reason`` is from a fixed
    vocabulary (what failed, and the status code)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Retrieved:
    """How a study's retrieve ended: sub-operation counts and the final status."""

    completed: int = 0
    failed: int = 0
    warning: int = 0
    status: int | None = None  # None: no final answer (association lost or timed out)

    @property
    def whole(self) -> bool:
        return self.status == 0x0000 and self.failed == 0

    @property
    def status_text(self) -> str:
        return "none" if self.status is None else f"0x{self.status:04X}"


class Tracker:
    """The open associations of a pull; ``abort_all`` ends them when the pull is stopped."""

    def __init__(self):
        self.open: set = set()
        self.stopped = False

    @contextmanager
    def holding(self, assoc):
        self.open.add(assoc)
        if self.stopped:  # opened while the pull was being stopped
            _abort(assoc)
        try:
            yield assoc
        finally:
            self.open.discard(assoc)
            if assoc.is_established:
                assoc.release()

    def abort_all(self) -> None:
        self.stopped = True
        for assoc in list(self.open):
            _abort(assoc)


def _abort(assoc) -> None:
    """Abort, and wake the thread waiting on the association's answers: pynetdicom wakes it when
    the peer aborts, but after our own A-ABORT it would wait out the whole DIMSE timeout."""
    assoc.abort()
    assoc.dimse.msg_queue.put((None, None))


def tls_args(source: PullSource) -> tuple[tuple | None, list[str]]:
    """pynetdicom's ``tls_args`` for ``source`` (None: plain DICOM), built afresh for each
    association, and the list a failed handshake's reason lands in. ConfigError for settings
    that cannot be used (a missing file, a key others can read)."""
    if source.tls is None:
        return None, []
    context = tls.client_context(source.tls, f"pull.sources.{source.name}.tls")
    failures = tls.watch_handshakes(context)
    return (context, source.tls.server_name or source.host), failures


def _associate(source: PullSource, calling_ae: str, timeout: float, contexts: list, *,
               roles: list | None = None, handlers: list | None = None, register: Callable | None = None):
    secure, failures = tls_args(source)
    reactors.install()
    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.network_timeout = ae.connection_timeout = source.timeout
    ae.dimse_timeout = timeout
    for context in contexts:
        ae.add_requested_context(*context) if isinstance(context, tuple) else ae.add_requested_context(context)
    if register is not None:
        register(ae)  # C-GET: instances stream into the gateway's receiving area
    assoc = ae.associate(source.host, source.port, ae_title=source.ae_title, ext_neg=roles or None,
                         evt_handlers=[NO_DELAY, *(handlers or ())], tls_args=secure)
    if not assoc.is_established:
        if failures:  # never retried in clear; the item's audit row names this, not OpenSSL's words
            raise PullError("TLS handshake failed")
        raise PullError("association rejected" if reactors.rejected(assoc) else "association failed")
    return assoc


@dataclass(frozen=True)
class FoundStudy:
    uid: str
    sop_classes: tuple[str, ...]  # SOP Classes in Study, when the PACS says (C-GET offers them)


def find_studies(source: PullSource, calling_ae: str, identifiers, tracker: Tracker) -> list[FoundStudy]:
    """The studies the PACS holds for ``identifiers`` ((keyword, value) pairs)."""
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    query.SOPClassesInStudy = ""
    for keyword, value in identifiers:
        setattr(query, keyword, value)
    found: dict[str, FoundStudy] = {}
    with tracker.holding(_associate(source, calling_ae, source.timeout,
                                    [StudyRootQueryRetrieveInformationModelFind])) as assoc:
        for status, identifier in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind):
            if not status:
                raise PullError("query got no answer")
            if status.Status in PENDING and identifier is not None:
                uid = str(identifier.get("StudyInstanceUID", "") or "").strip()
                value = identifier.get("SOPClassesInStudy")
                classes = [str(value)] if isinstance(value, str) else [str(c) for c in value or []]
                if uid and uid not in found:
                    found[uid] = FoundStudy(uid, tuple(classes))
            elif status.Status not in PENDING and status.Status != 0x0000:
                raise PullError(f"query failed (0x{status.Status:04X})")
    return list(found.values())


def move_study(source: PullSource, calling_ae: str, destination: str, study_uid: str,
               tracker: Tracker) -> Retrieved:
    """C-MOVE one study to ``destination`` (the gateway's receiver)."""
    with tracker.holding(_associate(source, calling_ae, source.retrieve_timeout,
                                    [StudyRootQueryRetrieveInformationModelMove])) as assoc:
        return _follow(assoc.send_c_move(_study(study_uid), destination, StudyRootQueryRetrieveInformationModelMove))


def get_study(source: PullSource, calling_ae: str, study_uid: str, sop_classes: list[str], receiver,
              tracker: Tracker) -> Retrieved:
    """C-GET one study; its instances arrive on this association and go to ``receiver`` (the
    gateway's C-STORE handling, :class:`gateway.ingest.handlers.Receiver`), offered as the SOP
    classes the PACS said the study holds."""
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    from gateway.ingest.scp import ACCEPTED_TRANSFER_SYNTAXES

    classes = list(dict.fromkeys(sop_classes or _COMMON_STORAGE))[:MAX_GET_CONTEXTS]
    contexts = [StudyRootQueryRetrieveInformationModelGet,
                *[(uid, [*ACCEPTED_TRANSFER_SYNTAXES, ExplicitVRLittleEndian, ImplicitVRLittleEndian]) for uid in classes]]
    roles = [build_role(uid, scp_role=True) for uid in classes]
    # Its caller policy (EVT_REQUESTED) is for associations it accepts; this one the gateway asked for.
    handlers = [(event, handler) for event, handler in receiver.handlers() if event is not evt.EVT_REQUESTED]
    assoc = _associate(source, calling_ae, source.retrieve_timeout, contexts, roles=roles, handlers=handlers,
                       register=receiver.receiving.register)
    with tracker.holding(assoc):
        return _follow(assoc.send_c_get(_study(study_uid), StudyRootQueryRetrieveInformationModelGet))


def _study(study_uid: str) -> Dataset:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = study_uid
    return identifier


def _follow(responses) -> Retrieved:
    """Read a retrieve's responses to the end: the counts of the last one that gave them."""
    outcome = Retrieved()
    for status, _ in responses:
        if not status:
            outcome.status = None
            return outcome
        for attribute, keyword in (("completed", "NumberOfCompletedSuboperations"),
                                   ("failed", "NumberOfFailedSuboperations"),
                                   ("warning", "NumberOfWarningSuboperations")):
            if keyword in status and status[keyword].value is not None:
                setattr(outcome, attribute, int(status[keyword].value))
        outcome.status = int(status.Status)
        if outcome.status not in PENDING:
            break
    if outcome.status in PENDING:
        outcome.status = None
    return outcome
