"""Pseudonyms, the database mapping and its encryption."""

from __future__ import annotations

import threading

import pytest

from gateway.config import load_config
from gateway.db import Database
from gateway.deid.mapping import (
    MappingKeyError,
    export_mapping,
    generate_key,
    import_mapping,
    lookup_pseudonym,
    write_mapping_csv,
)
from gateway.deid.tables import DeidSubject
from gateway.deid.pseudonyms import PseudonymService
from gateway.deid.stage import HeaderStage
from gateway.pipeline.stage import InstanceContext

from .conftest import SECRET


def create_tables(db: Database) -> None:
    """This room's table, and the audit trail every lookup and export writes to."""
    from gateway.audit.tables import AuditEvent

    DeidSubject.__table__.create(db.engine, checkfirst=True)
    AuditEvent.__table__.create(db.engine, checkfirst=True)


@pytest.fixture
def key(monkeypatch) -> str:
    value = generate_key()
    monkeypatch.setenv("DEID_GATEWAY_MAPPING_KEY", value)
    return value


@pytest.fixture
def config(tmp_path):
    return load_config(overrides={
        "deid": {"pseudonyms": {"project": "STUDY01"}},
        "database": {"url": f"sqlite:///{tmp_path}/gw.db"},
    })


@pytest.fixture
def database(config, tmp_path):
    db = Database(f"sqlite:///{tmp_path}/gw.db")
    create_tables(db)
    yield db
    db.dispose()


def test_without_a_database_pseudonyms_are_keyed_hashes():
    service = PseudonymService(None, None, SECRET)
    first = service.patient("12345", "DOE^JOHN")
    assert first == service.patient("12345", "other name") and first.startswith("DEID-")
    assert first != PseudonymService(None, None, b"another secret").patient("12345")


def test_sequential_pseudonyms_follow_the_pattern_and_persist(config, database, key):
    service = PseudonymService(config.deid, database, SECRET)
    assert service.patient("111", "A^B") == "STUDY01-000001"
    assert service.patient("222", "C^D") == "STUDY01-000002"
    restarted = PseudonymService(config.deid, database, SECRET)
    assert restarted.patient("111", "A^B") == "STUDY01-000001"


def test_concurrent_workers_never_share_a_number(config, tmp_path, key):
    create_tables(Database(f"sqlite:///{tmp_path}/gw.db"))
    results: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        db = Database(f"sqlite:///{tmp_path}/gw.db")
        service = PseudonymService(config.deid, db, SECRET)
        for i in range(10):
            pseudonym = service.patient(f"P{(n * 7 + i) % 15}", "")
            with lock:
                results.append(f"P{(n * 7 + i) % 15}={pseudonym}")
        db.dispose()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    mapping = dict(r.split("=") for r in results)
    assert len(mapping) == 15 and len(set(mapping.values())) == 15
    for line in results:
        patient, pseudonym = line.split("=")
        assert mapping[patient] == pseudonym


def test_the_identity_is_encrypted_at_rest(config, database, key, tmp_path):
    PseudonymService(config.deid, database, SECRET).patient("PID-SECRET-4711", "DOE^JOHN")
    database.dispose()
    raw = (tmp_path / "gw.db").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("gw.db-*"))
    assert b"PID-SECRET-4711" not in raw and b"DOE^JOHN" not in raw
    assert key.encode() not in raw


def test_lookup_and_export_need_the_key(config, database, key, monkeypatch, tmp_path):
    PseudonymService(config.deid, database, SECRET).patient("111", "DOE^JOHN")
    record = lookup_pseudonym(config.deid, database, "STUDY01-000001")
    assert (record.patient_id, record.patient_name) == ("111", "DOE^JOHN")
    records = export_mapping(config.deid, database)
    assert [r.pseudonym for r in records] == ["STUDY01-000001"]
    assert write_mapping_csv(records, tmp_path / "out.csv") == 1
    monkeypatch.delenv("DEID_GATEWAY_MAPPING_KEY")
    with pytest.raises(MappingKeyError):
        lookup_pseudonym(config.deid, database, "STUDY01-000001")
    monkeypatch.setenv("DEID_GATEWAY_MAPPING_KEY", generate_key())
    with pytest.raises(MappingKeyError):
        lookup_pseudonym(config.deid, database, "STUDY01-000001")


def test_without_the_key_pseudonyms_stay_consistent(config, database, monkeypatch):
    monkeypatch.delenv("DEID_GATEWAY_MAPPING_KEY", raising=False)
    first = PseudonymService(config.deid, database, SECRET).patient("111", "A")
    assert PseudonymService(config.deid, database, SECRET).patient("111", "A") == first


def test_an_imported_mapping_takes_precedence(config, database, key):
    service = PseudonymService(config.deid, database, SECRET)
    assert service.patient("111", "A") == "STUDY01-000001"
    result = import_mapping(config.deid, database, "patient_id,subject_id\n111,SUBJ-A\n222,SUBJ-B\n333,SUBJ-A\n", SECRET)
    assert (result.added, result.updated, len(result.rejected)) == (1, 1, 1)
    assert "333" not in repr(result)
    fresh = PseudonymService(config.deid, database, SECRET)
    assert fresh.patient("111", "A") == "SUBJ-A" and fresh.patient("222", "") == "SUBJ-B"
    assert fresh.patient("444", "") == "STUDY01-000002"
    assert lookup_pseudonym(config.deid, database, "SUBJ-B").patient_id == "222"


def test_the_stage_uses_the_database_pseudonym(config, database, key):
    from tests.deid.canary import SyntheticIdentity, base_dataset

    ds = base_dataset(SyntheticIdentity.random(5))
    ds.PatientID, ds.PatientName = "111", "DOE^JOHN"
    stage = HeaderStage(config.deid, "basic", SECRET, PseudonymService(config.deid, database, SECRET))
    out = stage(ds, InstanceContext(original=ds.copy()))
    assert out.PatientID == "STUDY01-000001" and out.PatientName == "STUDY01-000001"


def test_an_unreachable_database_asks_for_a_retry_not_a_quarantine(config, tmp_path, key):
    from tests.deid.canary import SyntheticIdentity, base_dataset
    from gateway.deid.pseudonyms import PseudonymUnavailable

    db = Database(f"sqlite:///{tmp_path}/missing/dir/gw.db")  # no table: every query fails
    stage = HeaderStage(config.deid, "basic", SECRET, PseudonymService(config.deid, db, SECRET))
    ds = base_dataset(SyntheticIdentity.random(12))
    ds.PatientID = "PID-4711"
    with pytest.raises(PseudonymUnavailable) as info:
        stage(ds, InstanceContext(original=ds.copy()))
    assert "4711" not in str(info.value)
