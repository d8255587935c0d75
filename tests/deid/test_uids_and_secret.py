"""UID replacement and where the secret comes from."""

import stat

from gateway.config import load_config
from gateway.keys import load_secret
from gateway.deid.uids import remap_uid


def test_uid_replacement_is_deterministic_and_keyed():
    uid = "1.2.840.113619.2.55.3.604688119.969.1268071029.320"
    assert remap_uid(uid, b"a") == remap_uid(uid, b"a")
    assert remap_uid(uid, b"a") != remap_uid(uid, b"b")
    assert remap_uid(uid, b"a") != remap_uid(uid + "1", b"a")


def test_replacement_uids_are_valid_2_25_uids():
    for n in range(200):
        new = remap_uid(f"1.2.3.{n}", b"secret")
        assert new.startswith("2.25.") and len(new) <= 64
        assert all(part.isdigit() and (part == "0" or not part.startswith("0")) for part in new.split("."))


def test_secret_from_the_environment_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("DEID_GATEWAY_SECRET", "from-env")
    config = load_config(overrides={"storage": {"root": str(tmp_path)}})
    assert load_secret(config.deid, config.storage.root) == b"from-env"


def test_secret_from_a_file(monkeypatch, tmp_path):
    monkeypatch.delenv("DEID_GATEWAY_SECRET", raising=False)
    (tmp_path / "s").write_text("file-secret\n")
    (tmp_path / "s").chmod(0o600)  # a secret others can read is refused (tests/security)
    config = load_config(overrides={"deid": {"secret_file": str(tmp_path / "s")}})
    assert load_secret(config.deid, config.storage.root) == b"file-secret"


def test_secret_is_created_once_private_and_reused(monkeypatch, tmp_path):
    monkeypatch.delenv("DEID_GATEWAY_SECRET", raising=False)
    config = load_config(overrides={"storage": {"root": str(tmp_path)}})
    first = load_secret(config.deid, config.storage.root)
    path = tmp_path / "keys" / "uid-secret"
    assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret(config.deid, config.storage.root) == first and len(first) >= 32
