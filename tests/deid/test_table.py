"""The project's copy of Table E.1-1 and the script that makes it."""

import json
import subprocess
import sys
from pathlib import Path

from gateway.deid.table import action_for, load_rows

ROOT = Path(__file__).resolve().parents[2]


def test_every_row_of_the_table_is_present():
    rows = load_rows()
    assert len(rows) == 621
    assert len({r.tag for r in rows}) == 621


def test_wildcard_and_private_rows_are_kept_as_patterns():
    tags = {r.tag for r in load_rows()}
    assert {"50xxxxxx", "60xx3000", "60xx4000", "private"} <= tags


def test_every_combined_action_of_the_standard_occurs():
    actions = {r.basic for r in load_rows()}
    assert {"X/Z", "X/D", "Z/D", "X/Z/D", "X/Z/U*"} <= actions


def test_options_override_the_basic_action():
    row = next(r for r in load_rows() if r.keyword == "StudyDate")
    assert action_for(row, set()) == ("Z", None)
    assert action_for(row, {"retain_full_dates"})[0] == "K"
    assert action_for(row, {"retain_modified_dates"})[0] == "C"


def test_the_data_file_says_how_it_was_made():
    data = json.loads((ROOT / "gateway/deid/data/annex_e.json").read_text())
    assert "tools/convert_annex_e.py" in data["_about"]


def test_conversion_script_converts_the_innolitics_format(tmp_path):
    source = [
        {"name": "Accession Number", "tag": "(0008,0050)", "stdCompIOD": "Y", "basicProfile": "Z", "id": "00080050"},
        {"name": "Curve Data", "tag": "(50XX,XXXX)", "stdCompIOD": "N", "basicProfile": "X", "cleanGraphOpt": "C"},
        {"name": "Private Attributes", "tag": "(GGGG,EEEE) WHERE GGGG IS ODD", "stdCompIOD": "N",
         "basicProfile": "X", "rtnSafePrivOpt": "C"},
    ]
    src, out = tmp_path / "in.json", tmp_path / "out.json"
    src.write_text(json.dumps(source))
    subprocess.run([sys.executable, str(ROOT / "tools/convert_annex_e.py"), str(src), str(out)], check=True,
                   capture_output=True)
    rows = {r["tag"]: r for r in json.loads(out.read_text())["rows"]}
    assert rows["00080050"]["keyword"] == "AccessionNumber" and rows["00080050"]["basic"] == "Z"
    assert rows["50xxxxxx"]["options"] == {"clean_graphics": "C"}
    assert rows["private"]["options"] == {"retain_safe_private": "C"}


def test_every_plain_row_has_an_action_in_every_builtin_profile():
    from gateway.config import load_config
    from gateway.deid.profiles import compile_profiles

    plain = [r for r in load_rows() if r.is_exact]
    for profile in compile_profiles(load_config().deid).values():
        assert all(r.tag_int in profile.exact for r in plain)
        assert {profile.exact[r.tag_int] for r in plain} <= {"X", "Z", "D", "K", "C", "U", "XZ", "XD", "ZD", "XZD",
                                                              "PID", "PNAME", "ACC"}
