"""Only the configured calling AE titles may talk to the gateway."""

from tests.integration.conftest import destination_for
from tests.peers import echoscu, storescu


def test_an_unknown_calling_ae_title_is_rejected_at_association(archive, gateway_factory, study):
    gateway = gateway_factory([destination_for(archive)]).start()

    echo = echoscu(gateway.port, aet="INTRUDER")
    assert echo.returncode != 0
    assert "Association Rejected" in echo.stdout + echo.stderr
    assert "Calling AE Title Not Recognized" in echo.stdout + echo.stderr

    store = storescu(gateway.port, study.files[:1], aet="INTRUDER")
    assert store.returncode != 0

    assert echoscu(gateway.port, aet="SCANNER").returncode == 0
    audit = gateway.cli("audit", "list").stdout
    assert "association_rejected" in audit


def test_a_caller_bound_to_an_address_is_rejected_from_elsewhere(archive, gateway_factory):
    gateway = gateway_factory(
        [destination_for(archive)],
        ingest={"allowed_callers": [{"ae_title": "SCANNER", "ip": "10.9.8.0/24"}]},
    ).start()
    assert echoscu(gateway.port, aet="SCANNER").returncode != 0
