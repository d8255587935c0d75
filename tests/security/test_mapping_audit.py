"""Every re-identification through the library (not only the command line) leaves an audit
row: lookups, exports, and the attempts refused for want of a key. No identity in any of them."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.audit.tables import AuditEvent
from gateway.config import load_config
from gateway.db import Database
from gateway.deid.mapping import (
    MappingKeyError,
    export_mapping,
    generate_key,
    lookup_pseudonym,
)
from gateway.deid.pseudonyms import PseudonymService
from gateway.keys import KeyFileError


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("DEID_GATEWAY_MAPPING_KEY", generate_key())
    config = load_config(overrides={"database": {"url": f"sqlite:///{tmp_path}/gw.db"}})
    db = Database(config.database.url)
    db.create_schema()
    PseudonymService(config.deid, db, b"secret").patient("PID-4711", "DOE^JANE")
    yield config, db
    db.dispose()


def _trail(db) -> list[dict]:
    with db.reading() as session:
        return [dict(e.detail, actor=e.actor) for e in
                session.scalars(select(AuditEvent).where(AuditEvent.event == "mapping_access").order_by(AuditEvent.id))]


def test_lookups_and_exports_are_audited_by_the_library_itself(setup):
    config, db = setup
    assert lookup_pseudonym(config.deid, db, "DEID-000001", actor="console:alice").patient_id == "PID-4711"
    assert lookup_pseudonym(config.deid, db, "DEID-999999", actor="console:alice") is None
    assert len(export_mapping(config.deid, db, actor="console:bob")) == 1
    trail = _trail(db)
    assert [(t["action"], t.get("found"), t.get("rows"), t["actor"]) for t in trail] == [
        ("lookup", True, None, "console:alice"), ("lookup", False, None, "console:alice"),
        ("export", None, 1, "console:bob")]
    assert "PID-4711" not in repr(trail) and "DOE" not in repr(trail)


def test_refused_attempts_are_audited(setup, monkeypatch, tmp_path):
    config, db = setup
    monkeypatch.setenv("DEID_GATEWAY_MAPPING_KEY", generate_key())  # the wrong key
    with pytest.raises(MappingKeyError):
        lookup_pseudonym(config.deid, db, "DEID-000001")
    key_file = tmp_path / "mapping.key"
    key_file.write_text(generate_key())
    key_file.chmod(0o644)
    opened = load_config(overrides={"deid": {"mapping": {"key_file": str(key_file)}}})
    with pytest.raises(KeyFileError):
        export_mapping(opened.deid, db)
    assert [(t["action"], t.get("refused")) for t in _trail(db)] == [
        ("lookup", "no valid mapping key"), ("export", "no valid mapping key")]


def test_the_mapping_key_is_rotated_through_the_command_line(tmp_path, monkeypatch, capsys):
    from gateway.cli import main

    old = generate_key()
    monkeypatch.setenv("DEID_GATEWAY_SECRET", "rotation-secret")
    monkeypatch.setenv("DEID_GATEWAY_MAPPING_KEY", old)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(f"storage: {{root: {tmp_path}}}\ndatabase: {{url: 'sqlite:///{tmp_path}/g.db'}}\n")
    subjects = tmp_path / "subjects.csv"
    subjects.write_text("PID-0815,SUBJ-1\nPID-0816,SUBJ-2\n")
    assert main(["mapping", "import", str(subjects), "--config", str(config_file)]) == 0

    new = tmp_path / "mapping.key.new"
    new.write_text(generate_key())
    new.chmod(0o644)
    assert main(["mapping", "rotate-key", str(new), "--config", str(config_file)]) == 2  # others could read it
    new.chmod(0o600)
    assert main(["mapping", "rotate-key", str(new), "--config", str(config_file)]) == 0
    assert "re-encrypted 2 identities" in capsys.readouterr().out

    assert main(["mapping", "lookup", "SUBJ-1", "--config", str(config_file)]) == 2  # the old key no longer reads
    monkeypatch.setenv("DEID_GATEWAY_MAPPING_KEY", new.read_text())
    capsys.readouterr()
    assert main(["mapping", "lookup", "SUBJ-1", "--config", str(config_file)]) == 0
    assert "PID-0815" in capsys.readouterr().out
    assert main(["audit", "list", "--event", "mapping_access", "--config", str(config_file)]) == 0
    assert "rotate-key" in capsys.readouterr().out
