"""The audit trail's seals show a row changed, removed or slipped in, and a seal removed, on
SQLite and PostgreSQL alike (gateway.audit.seals, ``deid-gateway audit verify``)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import delete, select

from gateway.audit import events as audit
from gateway.audit import seals
from gateway.audit.tables import AuditEvent, AuditSeal
from gateway.queue.tables import utcnow
from tests.pull.databases import database_url, db  # noqa: F401 - fixtures

SECRET = b"seal-test-secret"
NOW = timedelta(0)


def write(db, n: int, ago: float = 0.0) -> None:
    with db.session() as session:
        for i in range(n):
            row = audit.record(session, audit.FORWARDED, actor="forwarder", destination="archive", instances=i)
            row.at = utcnow() - timedelta(seconds=ago)


def broken_ranges(db, secret: bytes = SECRET) -> list[tuple[int, int]]:
    return [(b.first_id, b.last_id) for b in seals.verify(db, secret).broken]


@pytest.fixture
def sealed(db):
    """Three seals over rows 1-10, 11-20 and 21-30."""
    for _ in range(3):
        write(db, 10)
        assert seals.seal(db, SECRET, settle=NOW) is not None
    return db


def test_an_untouched_trail_is_intact_and_newer_rows_are_counted_not_judged(sealed):
    write(sealed, 4)
    verdict = seals.verify(sealed, SECRET)
    assert verdict.intact and (verdict.seals, verdict.rows_sealed, verdict.sealed_through) == (3, 30, 30)
    assert verdict.unsealed == 4
    assert seals.seal(sealed, SECRET, settle=NOW).rows == 4
    assert seals.seal(sealed, SECRET, settle=NOW) is None  # nothing new


def test_rows_younger_than_the_settling_time_wait_for_the_next_seal(db):
    write(db, 3, ago=120)
    write(db, 2)
    made = seals.seal(db, SECRET)
    assert (made.last_id, made.rows) == (3, 3)
    assert seals.verify(db, SECRET).unsealed == 2


@pytest.mark.parametrize("tamper", ["detail", "time", "actor"])
def test_a_changed_row_breaks_the_seal_of_its_range_only(sealed, tamper):
    with sealed.session() as session:
        row = session.get(AuditEvent, 15)
        if tamper == "detail":
            row.detail = {**row.detail, "destination": "elsewhere"}
        elif tamper == "time":
            row.at = row.at - timedelta(hours=1)
        else:
            row.actor = "web:someone-else"
    assert broken_ranges(sealed) == [(11, 20)]


def test_a_removed_row_breaks_its_seal(sealed):
    with sealed.session() as session:
        session.execute(delete(AuditEvent).where(AuditEvent.id == 25))
    assert broken_ranges(sealed) == [(21, 30)]


def test_a_row_put_in_the_place_of_another_breaks_its_seal(sealed):
    with sealed.session() as session:
        session.execute(delete(AuditEvent).where(AuditEvent.id == 5))
        session.add(AuditEvent(id=5, event=audit.FORWARDED, actor="forwarder", detail={"destination": "archive"}))
    assert broken_ranges(sealed) == [(1, 10)]


def test_a_removed_seal_breaks_the_one_after_it(sealed):
    with sealed.session() as session:
        session.execute(delete(AuditSeal).where(AuditSeal.id == 2))
    assert broken_ranges(sealed) == [(11, 30)]


def test_a_seal_made_again_without_the_secret_does_not_verify(sealed):
    with sealed.session() as session:  # rows changed, and the seal's MAC made anew with a guessed key
        session.get(AuditEvent, 12).detail = {}
        made = session.get(AuditSeal, 2)
        rows = session.execute(select(*seals._COLUMNS).where(AuditEvent.id.between(11, 20)).order_by(AuditEvent.id))
        made.mac, _ = seals._mac(seals.seal_key(b"a-guess"), session.get(AuditSeal, 1).mac, rows.all())
    assert broken_ranges(sealed) == [(11, 20), (21, 30)]  # the next seal was chained to the MAC replaced
    assert not seals.verify(sealed, b"a-guess").intact  # nor with the guess: the other seals are not its


def test_two_sealers_at_once_extend_the_chain_once(db, monkeypatch):
    write(db, 10)
    both_hashed = threading.Barrier(2, timeout=10)
    mac = seals._mac

    def hash_then_wait(*args):
        result = mac(*args)
        both_hashed.wait()
        return result

    monkeypatch.setattr(seals, "_mac", hash_then_wait)
    made = []
    sealers = [threading.Thread(target=lambda: made.append(seals.seal(db, SECRET, settle=NOW))) for _ in range(2)]
    for sealer in sealers:
        sealer.start()
    for sealer in sealers:
        sealer.join(20)
    assert sorted(m is None for m in made) == [False, True]
    with db.reading() as session:
        assert len(session.scalars(select(AuditSeal)).all()) == 1
    monkeypatch.undo()
    assert seals.verify(db, SECRET).intact


def test_verify_reads_a_long_trail_a_chunk_at_a_time(db, monkeypatch):
    monkeypatch.setattr(seals, "CHUNK", 7)
    write(db, 50)
    assert seals.seal(db, SECRET, settle=NOW).rows == 50
    assert seals.verify(db, SECRET).intact
    with db.session() as session:
        session.get(AuditEvent, 44).detail = {}
    assert broken_ranges(db) == [(1, 50)]


def test_the_command_line_seals_and_verifies_naming_row_ids_never_their_content(tmp_path, monkeypatch, capsys):
    from gateway.cli import main
    from gateway.db import Database

    monkeypatch.setenv("DEID_GATEWAY_SECRET", "cli-seal-secret")
    config = tmp_path / "config.yaml"
    config.write_text(f"storage: {{root: {tmp_path}}}\ndatabase: {{url: 'sqlite:///{tmp_path}/g.db'}}\n")
    assert main(["audit", "verify", "--config", str(config)]) == 0  # makes the schema; nothing to judge
    db = Database(f"sqlite:///{tmp_path}/g.db")
    write(db, 5, ago=120)
    capsys.readouterr()
    assert main(["audit", "seal", "--config", str(config)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "1 seals over 5 rows, through row 5; 0 newer rows not yet sealed", "intact"]
    with db.session() as session:
        session.get(AuditEvent, 3).detail = {"destination": "a-made-up-archive"}
    assert main(["audit", "verify", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "seal 1 does not match rows 1-5" in out and "NOT INTACT" in out
    assert "archive" not in out and "forwarder" not in out


def test_serve_s_scheduler_seals_with_the_gateway_s_own_secret(tmp_path, monkeypatch):
    from gateway.config import load_config
    from gateway.service import _scheduler, open_runtime

    monkeypatch.setenv("DEID_GATEWAY_SECRET", "serve-seal-secret")
    runtime = open_runtime(load_config(None, {"storage": {"root": str(tmp_path)},
                                              "database": {"url": f"sqlite:///{tmp_path / 'g.db'}"}}))
    write(runtime.db, 7, ago=120)
    job = _scheduler(runtime, threading.Event()).get_job("audit-seal")
    assert job.trigger.interval == timedelta(seconds=seals.SEAL_INTERVAL)
    job.func()
    verdict = seals.verify(runtime.db, runtime.secret)
    assert verdict.intact and verdict.rows_sealed == 7
    assert not seals.verify(runtime.db, SECRET).intact  # made with serve's secret, not another


def test_after_a_rotation_of_the_secret_the_old_seals_check_with_the_old_secret_given(sealed):
    write(sealed, 5)
    assert seals.seal(sealed, b"the-new-secret", settle=NOW).rows == 5
    alone = seals.verify(sealed, b"the-new-secret")
    assert not alone.intact and alone.unchecked == [1, 2, 3] and not alone.broken
    assert seals.verify(sealed, b"the-new-secret", older=(SECRET,)).intact
    with sealed.session() as session:  # hiding a changed range behind "another secret" hides nothing
        session.get(AuditSeal, 2).key = "0" * 16
    assert not seals.verify(sealed, b"the-new-secret", older=(SECRET,)).intact


def test_the_command_line_checks_old_seals_with_the_old_secret_file(tmp_path, monkeypatch, capsys):
    from gateway.cli import main
    from gateway.db import Database

    config = tmp_path / "config.yaml"
    config.write_text(f"storage: {{root: {tmp_path}}}\ndatabase: {{url: 'sqlite:///{tmp_path}/g.db'}}\n")
    monkeypatch.setenv("DEID_GATEWAY_SECRET", "the-old-secret")
    assert main(["audit", "verify", "--config", str(config)]) == 0
    write(Database(f"sqlite:///{tmp_path}/g.db"), 3, ago=120)
    assert main(["audit", "seal", "--config", str(config)]) == 0
    old = tmp_path / "old-secret"
    old.write_text("the-old-secret\n")
    old.chmod(0o600)
    monkeypatch.setenv("DEID_GATEWAY_SECRET", "the-new-secret")
    capsys.readouterr()
    assert main(["audit", "verify", "--config", str(config)]) == 1
    assert "made with another secret" in capsys.readouterr().out
    assert main(["audit", "verify", "--old-secret-file", str(old), "--config", str(config)]) == 0


def test_status_says_how_far_the_trail_is_sealed(db):
    from gateway.audit.report import status_lines

    write(db, 4)
    seals.seal(db, SECRET, settle=NOW)
    write(db, 2)
    with db.reading() as session:
        line = next(line for line in status_lines(session) if line.startswith("audit trail"))
    assert line.startswith("audit trail sealed through row 4 (last seal 20") and "UTC), 2 newer rows" in line
