"""``deid-gateway rules test`` says what would happen to each file, sending nothing and quoting
no value from the files."""

from __future__ import annotations

import shutil

from pydicom import dcmread
from pydicom.data import get_testdata_file

from gateway.cli import main

CONFIG = """
egress:
  destinations:
    - {name: archive, ae_title: A, host: 127.0.0.1, port: 9}
    - {name: registry, ae_title: R, host: 127.0.0.1, port: 9, profile: research}
rules:
  ordered:
    - use: drop-screenshots
    - name: cardiology
      match: {calling_ae: CARDIO, modality: [CT, MR]}
      profile: retain-dates
      destinations: [registry]
"""


def test_rules_test_names_the_rule_and_the_outcome(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    folder = tmp_path / "files"
    folder.mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), folder / "ct.dcm")
    shutil.copy(get_testdata_file("SC_rgb.dcm"), folder / "sc.dcm")
    patient = str(dcmread(folder / "ct.dcm").PatientName)

    assert main(["rules", "test", str(folder), "--calling-ae", "CARDIO", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "ct.dcm: rule cardiology: profile retain-dates to registry" in out
    assert "sc.dcm: rule drop-screenshots: drop" in out
    assert patient not in out

    assert main(["rules", "test", str(folder / "ct.dcm"), "--config", str(config)]) == 0
    assert "no rule (default): profile basic to archive; profile research to registry" in capsys.readouterr().out

    assert main(["rules", "list", "--config", str(config)]) == 0
    assert "drop-screenshots (built-in)" in capsys.readouterr().out
