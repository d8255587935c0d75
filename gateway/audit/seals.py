"""Seals over the audit trail: whether its rows are still as they were written.

Reviewers trust the audit trail to say who re-identified whom and what left the hospital; a
database administrator, or whoever restores a backup, could otherwise change or remove a row
unseen. So the scheduler of ``serve`` seals the rows written since the last seal, every
:data:`SEAL_INTERVAL` seconds: an HMAC-SHA256, keyed by the gateway's secret, over the previous
seal's MAC and each row in id order (id, time, event, study, actor, detail, as canonical JSON).
``deid-gateway audit verify`` computes every seal again and names each range of rows that no
longer matches: a row changed, removed or slipped in, or a seal removed (the next one then
covers rows and a predecessor it was not made over). Rows past the last seal are not yet
sealed; verify counts them, it does not judge them.

What a seal cannot show from the database alone: the newest seals removed together with the
rows they cover. Each seal is therefore also logged with its MAC, so the journal or the site's
log collector keeps a copy to compare with. Whoever holds the secret can forge seals; that is
one more reason to keep it away from the database (docs/security.md). Each seal names the key
that made it by a fingerprint: after the secret is rotated, the seals made before are checked
with the old secret given (``--old-secret-file``), and without it they are counted as not
checked, which is not "intact" either, so that renaming a seal's key hides nothing.

A row is sealed once it is :data:`SETTLE` seconds old. PostgreSQL hands out ids before a
transaction commits, so a row committed late could otherwise fall into a range already sealed;
no transaction of the gateway stays open that long after writing an audit row. Two sealers (two
``serve`` on one database) cannot both extend the chain: each seal names the seal it follows,
and that name is unique.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from hashlib import sha256

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from gateway import keys
from gateway.audit.tables import AuditEvent, AuditSeal
from gateway.queue.tables import utcnow

log = logging.getLogger("gateway.audit")

SEAL_INTERVAL = 60.0
SETTLE = timedelta(seconds=30)
#: Rows read at a time, sealing or verifying: memory stays bounded however long the trail.
CHUNK = 5000
_PURPOSE = b"audit-seal:"


def seal_key(secret: bytes) -> bytes:
    return keys.keyed_hash(secret, _PURPOSE, b"v1")


def fingerprint(key: bytes) -> str:
    """Names a seal key without giving it away."""
    return hmac.new(key, b"fingerprint", sha256).hexdigest()[:16]


#: What a seal covers of each row: all of it.
_COLUMNS = (AuditEvent.id, AuditEvent.at, AuditEvent.event, AuditEvent.study_id, AuditEvent.study, AuditEvent.actor,
            AuditEvent.detail)


def _canonical(row: tuple) -> bytes:
    row_id, at, *rest = row
    fields = [row_id, at.isoformat() if at else None, *rest]
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str).encode()


def _mac(key: bytes, previous: str, rows: Iterable[tuple]) -> tuple[str, int]:
    """The MAC over ``previous`` and ``rows`` in order, and how many rows it covered."""
    mac, count = hmac.new(key, previous.encode(), sha256), 0
    for row in rows:
        line = _canonical(row)
        mac.update(len(line).to_bytes(4, "big") + line)  # lengths first: no two sequences read alike
        count += 1
    return mac.hexdigest(), count


def _rows(session, after: int, through: int) -> Iterator[tuple]:
    """The rows with ``after < id <= through``, in id order, a chunk at a time."""
    while True:
        chunk = session.execute(select(*_COLUMNS).where(AuditEvent.id > after, AuditEvent.id <= through)
                                .order_by(AuditEvent.id).limit(CHUNK)).all()
        yield from chunk
        if len(chunk) < CHUNK:
            return
        after = chunk[-1][0]


def seal(db, secret: bytes, settle: timedelta = SETTLE) -> AuditSeal | None:
    """Seal the rows written since the last seal that are ``settle`` old; None if there are none
    (or another sealer got there first). The rows are read and hashed in a reading transaction,
    which never holds up a writer; only the seal's own row is written."""
    with db.reading() as session:
        last = session.execute(select(AuditSeal.id, AuditSeal.last_id, AuditSeal.mac)
                               .order_by(AuditSeal.id.desc()).limit(1)).first()
        follows, after, previous = last or (0, 0, "")
        through = session.scalar(select(func.max(AuditEvent.id)).where(AuditEvent.at <= utcnow() - settle))
        if through is None or through <= after:
            return None
        key = seal_key(secret)
        mac, count = _mac(key, previous, _rows(session, after, through))
    made = AuditSeal(at=utcnow(), follows=follows, last_id=through, rows=count, mac=mac, key=fingerprint(key))
    try:
        with db.session() as session:
            session.add(made)
    except IntegrityError:  # another sealer extended the chain meanwhile
        return None
    log.info("audit sealed: seal %d, rows %d-%d (%d), mac %s", made.id, after + 1, through, count, mac)
    return made


@dataclass(frozen=True)
class Progress:
    """How far sealing has come, cheaply (no MAC computed): for ``status`` and ``/metrics``,
    where rows waiting long for a seal say that no ``serve`` is sealing."""

    sealed_through: int
    last_seal_at: datetime | None
    unsealed: int


def progress(session) -> Progress:
    last = session.execute(select(AuditSeal.last_id, AuditSeal.at).order_by(AuditSeal.id.desc()).limit(1)).first()
    through, at = last or (0, None)
    unsealed = session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.id > through))
    return Progress(through, at, unsealed)


@dataclass(frozen=True)
class Broken:
    """A seal that no longer matches the rows of its range."""

    seal: int
    first_id: int
    last_id: int
    sealed_rows: int
    rows_now: int


@dataclass(frozen=True)
class Verdict:
    seals: int
    rows_sealed: int
    broken: list[Broken]
    unchecked: list[int]  # seals made with a secret not given (from before a rotation)
    sealed_through: int  # the last sealed row's id (0: none)
    unsealed: int  # rows past the last seal

    @property
    def intact(self) -> bool:
        return not self.broken and not self.unchecked


def verify(db, secret: bytes, older: tuple[bytes, ...] = ()) -> Verdict:
    """Compute every seal again over the rows of its range, in order, with the key of ``secret``
    or of one of the ``older`` secrets it replaced, whichever made the seal."""
    known = {fingerprint(key): key for key in map(seal_key, (secret, *older))}
    broken, unchecked, seals, rows_sealed = [], [], 0, 0
    after, previous, follows = 0, "", 0
    with db.reading() as session:
        for made in session.scalars(select(AuditSeal).order_by(AuditSeal.id)).all():
            key = known.get(made.key)
            if key is None:
                unchecked.append(made.id)
            else:
                mac, count = _mac(key, previous, _rows(session, after, made.last_id))
                if made.follows != follows or count != made.rows or not hmac.compare_digest(mac, made.mac):
                    broken.append(Broken(made.id, after + 1, made.last_id, made.rows, count))
            seals, rows_sealed = seals + 1, rows_sealed + made.rows
            after, previous, follows = made.last_id, made.mac, made.id
        unsealed = session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.id > after))
    return Verdict(seals, rows_sealed, broken, unchecked, after, unsealed)


def verdict_lines(verdict: Verdict) -> list[str]:
    """What ``deid-gateway audit verify`` prints: counts and row ids, never a row's content."""
    lines = [(f"{verdict.seals} seals over {verdict.rows_sealed} rows, through row {verdict.sealed_through}; "
              f"{verdict.unsealed} newer rows not yet sealed")]
    for b in verdict.broken:
        lines.append(f"seal {b.seal} does not match rows {b.first_id}-{b.last_id} ({b.sealed_rows} sealed, "
                     f"{b.rows_now} there now): a row changed, removed or added, or a seal before it removed")
    if verdict.unchecked:
        lines.append(f"{len(verdict.unchecked)} seals (ids {verdict.unchecked[0]}-{verdict.unchecked[-1]}) were made "
                     "with another secret: give it with --old-secret-file to check them")
    if verdict.intact:
        lines.append("intact")
    else:
        lines.append(f"NOT INTACT: {len(verdict.broken)} seals do not match, {len(verdict.unchecked)} not checked")
    return lines
