"""Who may associate: the called AE title, allow-list entries bound to addresses and
certificates, the reason a refusal gives, and the start-up warnings about open entries."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pydantic import ValidationError

from gateway import tls
from gateway.config import load_config
from gateway.ingest import callers
from gateway.ingest.callers import PeerCertificate, check_called, check_caller, open_entry_warnings
from gateway.ingest.config import IngestConfig
from gateway.keys import KeyFileError
from tests.ingest.tls_pki import PACS_SAN, PACS_SUBJECT, make_ingest_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_ingest_pki(tmp_path_factory.mktemp("pki"))


def _peer(leaf) -> PeerCertificate:
    return PeerCertificate(x509.load_pem_x509_certificate(leaf.cert.read_bytes()).public_bytes(Encoding.DER))


def _tls(pki, **settings) -> dict:
    return {"cert_file": pki.gateway.cert, "key_file": pki.gateway.key, "ca_file": pki.ca, **settings}


def test_the_called_ae_title_must_be_the_gateways_unless_switched_off():
    assert check_called(IngestConfig(), "DEID_GATEWAY ") is None
    assert check_called(IngestConfig(), "ANYTHING") == callers.CALLED_AE
    assert check_called(IngestConfig(check_called_ae_title=False), "ANYTHING") is None


def test_the_refusal_names_the_furthest_any_entry_got(pki):
    ingest = IngestConfig(allowed_callers=[
        {"ae_title": "SCANNER", "ip": "10.1.2.0/24"},
        {"ae_title": "PACS_MAIN", "ip": "10.1.2.3", "cert_subject": PACS_SUBJECT},
        {"ae_title": "PACS_MAIN", "cert_san": "PACS-MAIN.hospital.test"},
        {"ae_title": "LOCAL"},
    ])
    pacs, modality, impostor = _peer(pki.pacs), _peer(pki.modality), _peer(pki.impostor)
    assert check_caller(ingest, "INTRUDER", "10.1.2.3", pacs) == callers.CALLING_AE
    assert check_caller(ingest, "SCANNER", "10.9.9.9", None) == callers.ADDRESS
    assert check_caller(ingest, "SCANNER", "10.1.2.200", None) is None
    assert check_caller(ingest, "PACS_MAIN", "10.1.2.3", None) == callers.NO_CERTIFICATE
    assert check_caller(ingest, "PACS_MAIN", "10.1.2.3", modality) == callers.WRONG_CERTIFICATE
    assert check_caller(ingest, "PACS_MAIN", "10.1.2.3", pacs) is None  # subject and address
    assert check_caller(ingest, "PACS_MAIN", "10.7.7.7", pacs) is None  # SAN, any address, any case
    # The CA is the handshake's business: a certificate that reached here was verified by it.
    assert check_caller(ingest, "PACS_MAIN", "10.7.7.7", impostor) is None
    assert check_caller(ingest, "LOCAL", "192.0.2.1", None) is None
    assert check_caller(IngestConfig(allow_any_caller=True), "ANY", "192.0.2.1", None) is None


def test_a_subject_matches_whole_and_a_san_by_its_kind(pki):
    pacs = _peer(pki.pacs)
    assert pacs.matches(IngestConfig(allowed_callers=[{"ae_title": "A", "cert_subject": PACS_SUBJECT}])
                        .allowed_callers[0])
    for subject in ("CN=pacs-main", "CN=pacs-main,OU=Radiology,O=Other", "O=Hospital,OU=Radiology,CN=pacs-main"):
        rule = IngestConfig(allowed_callers=[{"ae_title": "A", "cert_subject": subject}]).allowed_callers[0]
        assert not pacs.matches(rule), subject
    both = IngestConfig(allowed_callers=[{"ae_title": "A", "cert_subject": PACS_SUBJECT,
                                          "cert_san": "modality.hospital.test"}]).allowed_callers[0]
    assert not pacs.matches(both)
    assert PACS_SAN in pacs.sans
    assert "127.0.0.1" in _peer(pki.gateway).sans


def test_settings_that_cannot_work_stop_loading(pki):
    with pytest.raises(ValidationError, match="nothing would listen"):
        IngestConfig(plain_listener=False)
    with pytest.raises(ValidationError, match="ca_file is needed"):
        IngestConfig(tls={"cert_file": pki.gateway.cert})
    with pytest.raises(ValidationError, match="must differ"):
        IngestConfig(tls=_tls(pki, port=11112))
    with pytest.raises(ValidationError, match="cert_subject"):
        IngestConfig(allowed_callers=[{"ae_title": "A", "cert_subject": "not a name"}])
    assert IngestConfig(tls={"cert_file": pki.gateway.cert, "client_certificates": "none"}).tls.ca_file is None


def test_open_entries_are_warned_about_only_off_loopback():
    entries = [{"ae_title": "BOUND", "ip": "10.0.0.0/8"}, {"ae_title": "OPEN"},
               {"ae_title": "CERT", "cert_san": "x.test"}]
    assert open_entry_warnings(IngestConfig(allowed_callers=entries)) == []
    assert open_entry_warnings(IngestConfig(host="::1", allowed_callers=entries)) == []
    warned = open_entry_warnings(IngestConfig(host="0.0.0.0", allowed_callers=entries))
    assert len(warned) == 1 and "allowed_callers[1] (OPEN)" in warned[0] and "0.0.0.0" in warned[0]
    assert "ANY sender" in open_entry_warnings(IngestConfig(host="10.0.0.1", allow_any_caller=True))[0]


def test_a_tls_listener_off_loopback_is_warned_about_too(pki):
    ingest = IngestConfig(allowed_callers=[{"ae_title": "OPEN"}], plain_listener=False,
                          tls=_tls(pki, host="192.0.2.10"))
    assert "192.0.2.10" in open_entry_warnings(ingest)[0]


def test_the_server_context_follows_the_policy(pki):
    for mode, expected in tls.CLIENT_CERTIFICATES.items():
        settings = IngestConfig(tls=_tls(pki, client_certificates=mode)).tls
        context = tls.server_context(settings, "ingest.tls")
        assert context.verify_mode == expected
        assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    for cipher in context.get_ciphers():
        if cipher["protocol"] == "TLSv1.2":
            assert cipher["kea"] in ("kx-ecdhe", "kx-dhe") and cipher["aead"], cipher["name"]
    assert tls.server_context(IngestConfig(tls=_tls(pki, min_version="1.3")).tls, "ingest.tls") \
        .minimum_version == ssl.TLSVersion.TLSv1_3


def test_a_key_others_can_read_or_a_missing_certificate_stops_start_up(pki, tmp_path):
    loose = tmp_path / "loose.key"
    loose.write_bytes(pki.gateway.key.read_bytes())
    loose.chmod(0o644)
    with pytest.raises(KeyFileError, match="ingest.tls.key_file"):
        tls.server_context(IngestConfig(tls=_tls(pki, key_file=loose)).tls, "ingest.tls")
    with pytest.raises(tls.ConfigError, match="ingest.tls.cert_file"):
        tls.server_context(IngestConfig(tls=_tls(pki, cert_file=tmp_path / "missing.crt")).tls, "ingest.tls")


def test_ae_titles_are_printable_in_logs():
    assert callers.printable(" PACS\nX\x00 ") == "PACS?X?"


def test_the_readmes_ingest_examples_load_and_warn_about_nothing(tmp_path):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", readme, re.DOTALL)]
    examples = [b for b in blocks if isinstance(b, dict) and "allowed_callers" in b.get("ingest", {})]
    assert len(examples) >= 2
    for raw in examples:
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(raw))
        ingest = load_config(path).ingest
        assert ingest.host != "0.0.0.0" and open_entry_warnings(ingest) == []
