"""Delivery to a DICOMweb archive over STOW-RS (Orthanc's DICOMweb plugin, authentication on)."""

import pytest

from tests.peers import ARCHIVE_PASSWORD, ARCHIVE_USER, DICOMWEB_PLUGIN, storescu, wait_for
from tests.study import FORBIDDEN

pytestmark = pytest.mark.skipif(not DICOMWEB_PLUGIN.exists(), reason="orthanc-dicomweb not installed")


def test_a_study_is_delivered_over_stow_rs(archive, gateway_factory, study, monkeypatch):
    monkeypatch.setenv("ARCHIVE_PASSWORD", ARCHIVE_PASSWORD)
    gateway = gateway_factory([{
        "name": "web-archive", "protocol": "stow-rs", "url": archive.url + "/dicom-web",
        "username": ARCHIVE_USER, "password_env": "ARCHIVE_PASSWORD",
        "allow_credentials_over_http": True,  # loopback; HTTPS is tests/integration/test_tls_egress.py
    }]).start()

    storescu(gateway.port, study.files)

    wait_for(lambda: len(archive.instances()) == len(study.files), 120, what="STOW-RS delivery")
    for orthanc_id in archive.instances():
        assert not [s for s in FORBIDDEN if s in archive.instance_file(orthanc_id)]
    assert archive.stores_received() == len(study.files)


def test_a_wrong_password_is_retried_not_lost(archive, gateway_factory, study, monkeypatch):
    monkeypatch.setenv("ARCHIVE_PASSWORD", "wrong")
    gateway = gateway_factory([{
        "name": "web-archive", "protocol": "stow-rs", "url": archive.url + "/dicom-web",
        "username": ARCHIVE_USER, "password_env": "ARCHIVE_PASSWORD",
        "allow_credentials_over_http": True,  # loopback; HTTPS is tests/integration/test_tls_egress.py
    }]).start()
    storescu(gateway.port, study.files[:2])
    wait_for(lambda: "HTTP 401" in gateway.cli("audit", "list").stdout, 60, what="a refused attempt")
    assert archive.instances() == []
