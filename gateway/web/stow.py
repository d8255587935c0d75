"""DICOMweb STOW-RS ingest: ``POST /dicomweb/studies[/{study}]`` (PS3.18 10.5).

A sender pushes instances over HTTPS as it would over C-STORE, and they take the same road: each
part of the ``multipart/related; type="application/dicom"`` body is streamed to a file of the
spool as it arrives (never the whole request in memory), then validated, moved into the spool
and recorded by :class:`gateway.ingest.stow.StowIntake` before the answer says "stored". Caps
(``web.stow``) hold while streaming: a part past ``max_part_bytes`` is dropped as it passes the
limit; a request past ``max_request_bytes`` or ``max_parts`` is cut off there.

Every request authenticates as one of ``web.stow.senders`` (bearer token, client certificate,
address: :func:`authenticate`), whose ``calling_ae`` then stands for the sender in routing
rules and the audit trail. No sender, no reading of the body.

The answer is PS3.18's: ``application/dicom+json`` with a ReferencedSOPSequence of what is
stored and a FailedSOPSequence with the C-STORE failure status of each refused part;
200 all stored, 202 some, 409 none, 413 none for their size (or the request too large),
400 a body that is not a multipart message, 415 another media type.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from python_multipart.exceptions import FormParserError, MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from gateway.addresses import in_network
from gateway.audit import events as audit
from gateway.ingest.refusals import RefusalLedger
from gateway.ingest.stow import Outcome, PartFile, Sender, StowIntake
from gateway.web import tokens
from gateway.web.auth import client_address
from gateway.web.config import StowConfig
from gateway.web.tlspeer import peer_certificate

log = logging.getLogger("gateway.web.stow")
# python-multipart's warnings about a malformed body quote the bytes it found there.
logging.getLogger("python_multipart").setLevel(logging.ERROR)
router = APIRouter()

DICOM_JSON = "application/dicom+json"
BATCH_BYTES = 1024 * 1024
UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
# Why a request was not admitted (audited with the address; nothing the sender sent).
NO_CREDENTIALS = "no bearer token or client certificate"
TOKEN_REFUSED = "bearer token not accepted"
CERTIFICATE_REFUSED = "client certificate not accepted"
ADDRESS_REFUSED = "address not allowed for this sender"
# Why a request was cut off or not read.
REQUEST_TOO_LARGE = "request larger than web.stow.max_request_bytes"
TOO_MANY_PARTS = "request has more parts than web.stow.max_parts"
MALFORMED = "request body is not a multipart/related message"


@dataclass
class Stow:
    """What the STOW-RS handlers share, kept on ``app.state.stow``."""

    config: StowConfig
    intake: StowIntake
    #: Refused requests, audited as the receiver audits refused associations: a sender retrying
    #: with a stale token at once, or a flood, writes a few rows a minute and a count
    #: (:mod:`gateway.ingest.refusals`). Flushed as the console stops.
    refusals: RefusalLedger = field(init=False)

    def __post_init__(self) -> None:
        self.refusals = RefusalLedger(self._audit_count)

    def refused(self, reason: str, address: str) -> None:
        """Audit a request refused for ``reason`` (a fixed phrase) from ``address``."""
        if self.refusals.one_by_one(audit.REJECTED_ASSOCIATION, address, reason=reason):
            log.warning("refused a STOW-RS request from %s: %s", address, reason)
            self._audit(reason=reason, address=address)

    def _audit_count(self, event: str, detail: dict) -> None:
        log.warning("%d more STOW-RS refusals from %s in a minute: %s", detail["refusals"], detail["address"],
                    detail["reason"])
        self._audit(**detail)

    def _audit(self, **detail) -> None:
        audit.record_alone(self.intake.db, audit.REJECTED_ASSOCIATION, actor="stow-rs", via="stow-rs", **detail)


class Cut(Exception):
    """The request is refused from here on; parts already stored stay stored (and are listed)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


def authenticate(request: Request, stow: StowConfig) -> Sender | str:
    """The configured sender every credential of which this request presents, else the reason
    for refusing it. A token is compared by its SHA-256 against every entry (constant time)."""
    token = tokens.presented(request.headers.get("authorization"))
    certificate = peer_certificate(request)
    address = client_address(request)
    if token is None and certificate is None:
        return NO_CREDENTIALS
    reason = TOKEN_REFUSED if token is not None else CERTIFICATE_REFUSED
    for sender, token_ok in zip(stow.senders, tokens.matches(token, [s.token_sha256 for s in stow.senders]),
                                strict=True):
        if sender.token_sha256 is not None and not token_ok:
            continue
        if sender.needs_certificate and (certificate is None or not certificate.matches(sender)):
            if certificate is not None or token_ok:  # an entry this request's credentials concern
                reason = CERTIFICATE_REFUSED
            continue
        if sender.ip is not None and not in_network(address, sender.ip):
            reason = ADDRESS_REFUSED
            continue
        return Sender(sender.name, sender.calling_ae, address)
    return reason


@dataclass
class _Reception:
    """The parser's state over one request body; fed chunk by chunk in a worker thread."""

    intake: StowIntake
    limits: StowConfig
    sender: Sender
    study: str | None
    outcomes: list[Outcome] = field(default_factory=list)
    size: int = 0
    parts: int = 0
    ended: bool = False
    part: PartFile | None = None
    headers: dict = field(default_factory=dict)
    _name: bytes = b""
    _value: bytes = b""

    def parser(self, boundary: bytes) -> MultipartParser:
        def add(attribute):
            return lambda data, start, end: setattr(self, attribute, getattr(self, attribute) + data[start:end])

        return MultipartParser(boundary, {
            "on_part_begin": self._begin, "on_header_field": add("_name"), "on_header_value": add("_value"),
            "on_header_end": self._header, "on_headers_finished": self._body,
            "on_part_data": self._data,
            "on_part_end": self._end, "on_end": lambda: setattr(self, "ended", True)})

    def _begin(self) -> None:
        self.parts += 1
        if self.parts > self.limits.max_parts:
            raise Cut(413, TOO_MANY_PARTS)
        self.headers = {}

    def _header(self) -> None:
        self.headers[self._name.decode("latin-1").strip().lower()] = self._value.decode("latin-1").strip()
        self._name = self._value = b""

    def _body(self) -> None:
        media_type = self.headers.get("content-type", "application/dicom").split(";")[0].strip().lower()
        if media_type == "application/dicom":  # a part of another type is refused unwritten
            self.part = self.intake.open_part()

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self.part is not None:
            self.part.write(data[start:end])

    def _end(self) -> None:
        part, self.part = self.part, None
        if part is None:
            self.outcomes.append(self.intake.not_dicom(self.sender))
        else:
            self.outcomes.append(self.intake.store(part, self.sender, self.study))

    def abandon(self) -> None:
        """The body stopped mid-part: nothing of that part is kept."""
        if self.part is not None:
            self.part.discard()
            self.part = None


@router.post("/dicomweb/studies")
async def store_instances(request: Request) -> Response:
    return await _store(request, None)


@router.post("/dicomweb/studies/{study}")
async def store_study_instances(request: Request, study: str) -> Response:
    if len(study) > 64 or not UID.match(study):
        return PlainTextResponse("the study in the path is not a UID", status_code=400)
    return await _store(request, study)


async def _store(request: Request, study: str | None) -> Response:
    stow: Stow = request.app.state.stow
    sender = authenticate(request, stow.config)
    if isinstance(sender, str):
        await run_in_threadpool(stow.refused, sender, client_address(request))
        return PlainTextResponse("authentication required", status_code=401,
                                 headers={"WWW-Authenticate": 'Bearer realm="deid-gateway"'})
    boundary = _boundary(request.headers.get("content-type", ""))
    if boundary is None:
        return PlainTextResponse('only multipart/related; type="application/dicom" is accepted', status_code=415)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > stow.config.max_request_bytes:
        return _answer([], Cut(413, REQUEST_TOO_LARGE))
    reception = _Reception(stow.intake, stow.config, sender, study)
    cut = await _receive(request, reception, boundary)
    await run_in_threadpool(stow.intake.audit_request, sender, reception.outcomes)
    stored = sum(1 for o in reception.outcomes if o.stored)
    log.info("STOW-RS request from %s: %d stored, %d refused%s", sender.name, stored,
             len(reception.outcomes) - stored, f" ({cut.reason})" if cut else "")
    return _answer(reception.outcomes, cut)


async def _receive(request: Request, reception: _Reception, boundary: bytes) -> Cut | None:
    """Stream the body through the parser; the parts are stored as they end."""
    try:
        parser = reception.parser(boundary)
    except FormParserError:
        return Cut(400, MALFORMED)
    limit = reception.limits.max_request_bytes

    def feed(chunks: list[bytes]) -> None:
        for chunk in chunks:
            reception.size += len(chunk)
            if reception.size > limit:
                raise Cut(413, REQUEST_TOO_LARGE)
            parser.write(chunk)

    try:
        # The body arrives in TLS-record-sized pieces; they go to the worker thread a batch
        # (about BATCH_BYTES) at a time, which bounds memory and spares a thread hop per piece.
        batch, batched = [], 0
        async for chunk in request.stream():
            batch.append(chunk)
            batched += len(chunk)
            if batched >= BATCH_BYTES:
                await run_in_threadpool(feed, batch)
                batch, batched = [], 0
        await run_in_threadpool(feed, batch)
        await run_in_threadpool(parser.finalize)
    except Cut as cut:
        return cut
    except MultipartParseError:
        return Cut(400, MALFORMED)
    except ClientDisconnect:
        return Cut(400, "the sender went away mid-request")
    finally:
        reception.abandon()
    return None if reception.ended else Cut(400, MALFORMED)


def _boundary(content_type: str) -> bytes | None:
    """The boundary of a ``multipart/related`` body of DICOM parts (``type`` may be left out)."""
    media_type, options = parse_options_header(content_type)
    options = {k.lower(): v for k, v in options.items()}
    if media_type != b"multipart/related" or not options.get(b"boundary"):
        return None
    if options.get(b"type", b"application/dicom").lower() != b"application/dicom":
        return None  # metadata and bulk data (application/dicom+json) are not taken
    return options[b"boundary"]


def _answer(outcomes: list[Outcome], cut: Cut | None) -> Response:
    stored = [o for o in outcomes if o.stored]
    failed = [o for o in outcomes if not o.stored]
    if cut is not None:
        status = cut.status
    elif not outcomes:
        status = 400  # a well-formed message without a single part
    elif not failed:
        status = 200
    elif stored:
        status = 202
    else:
        status = 413 if all(o.too_large for o in failed) else 409
    body = {}
    if failed:
        body["00081198"] = {"vr": "SQ", "Value": [_item(o, failure=True) for o in failed]}
    if stored:
        body["00081199"] = {"vr": "SQ", "Value": [_item(o) for o in stored]}
    return Response(json.dumps(body), status_code=status, media_type=DICOM_JSON)


def _item(outcome: Outcome, failure: bool = False) -> dict:
    """One Referenced/Failed SOP item: the instance's own UIDs (when its file meta could be
    read), and for a failure the C-STORE status as FailureReason."""
    item = {}
    if outcome.sop_class_uid:
        item["00081150"] = {"vr": "UI", "Value": [outcome.sop_class_uid]}
    if outcome.sop_instance_uid:
        item["00081155"] = {"vr": "UI", "Value": [outcome.sop_instance_uid]}
    if failure:
        item["00081197"] = {"vr": "US", "Value": [outcome.status]}
    return item
