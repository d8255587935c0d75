"""docs/conformance.md is what tools/conformance.py makes of the code's tables today: a change
of SOP classes, transfer syntaxes, policies, TLS or profiles without regenerating it fails here
(run ``python tools/conformance.py``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tool():
    spec = importlib.util.spec_from_file_location("conformance_tool", ROOT / "tools" / "conformance.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_conformance_statement_is_current():
    tool = _tool()
    assert (ROOT / "docs" / "conformance.md").read_text() == tool.render(), (
        "docs/conformance.md is stale: run python tools/conformance.py")


def test_it_is_read_from_the_code():
    from gateway.deid.options import OPTIONS
    from gateway.ingest.scp import ACCEPTED_TRANSFER_SYNTAXES

    text = _tool().render()
    assert all(str(uid) in text for uid in ACCEPTED_TRANSFER_SYNTAXES)
    assert all(code in text for code, _, _ in OPTIONS.values())
    assert "1.2.840.10008.5.1.4.1.2.2.2" in text  # Study Root MOVE, the pull's
