"""Re-identification through the command line needs the key, and every use is audited."""

import pytest

from gateway.cli import main


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    monkeypatch.setenv("DEID_GATEWAY_SECRET", "mapping-test-secret")
    path = tmp_path / "config.yaml"
    path.write_text(f"storage: {{root: {tmp_path}}}\ndatabase: {{url: 'sqlite:///{tmp_path}/g.db'}}\n")
    return str(path)


def test_import_lookup_and_export_need_the_key_and_leave_an_audit_trail(config_file, tmp_path, monkeypatch, capsys):
    assert main(["mapping", "new-key"]) == 0
    key = capsys.readouterr().out.strip()
    csv = tmp_path / "subjects.csv"
    csv.write_text("patient_id,subject\nPID0004711,SUBJ-001\n")

    assert main(["mapping", "import", str(csv), "--config", config_file]) == 2  # no key yet
    monkeypatch.setenv("DEID_GATEWAY_MAPPING_KEY", key)
    assert main(["mapping", "import", str(csv), "--config", config_file]) == 0
    capsys.readouterr()
    assert main(["mapping", "lookup", "SUBJ-001", "--config", config_file]) == 0
    assert "PID0004711" in capsys.readouterr().out
    export = tmp_path / "export.csv"
    assert main(["mapping", "export", str(export), "--config", config_file]) == 0
    assert "PID0004711" in export.read_text() and oct(export.stat().st_mode & 0o777) == "0o600"

    capsys.readouterr()
    assert main(["audit", "list", "--config", config_file]) == 0
    trail = capsys.readouterr().out
    assert trail.count("mapping_access") == 4
    assert "PID0004711" not in trail


def test_a_wrong_key_reads_nothing(config_file, tmp_path, monkeypatch, capsys):
    from gateway.deid.mapping import generate_key

    monkeypatch.setenv("DEID_GATEWAY_MAPPING_KEY", generate_key())
    csv = tmp_path / "subjects.csv"
    csv.write_text("PID0004711,SUBJ-001\n")
    assert main(["mapping", "import", str(csv), "--config", config_file]) == 0
    monkeypatch.setenv("DEID_GATEWAY_MAPPING_KEY", generate_key())
    capsys.readouterr()
    main(["mapping", "lookup", "SUBJ-001", "--config", config_file])
    assert "PID0004711" not in capsys.readouterr().out
