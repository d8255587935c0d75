"""The configuration file: defaults, documentation and error messages."""

from pathlib import Path

import pytest
import yaml

from gateway.config import ConfigError, GatewayConfig, load_config

SHIPPED = Path(__file__).resolve().parents[1] / "config.yaml"


def test_the_shipped_config_yaml_loads():
    config = load_config(SHIPPED)
    assert config.ingest.port == 11112


def test_the_shipped_config_yaml_states_the_embedded_defaults():
    shipped = load_config(SHIPPED)
    defaults = GatewayConfig()
    for section in ("storage", "database", "queue", "deid", "egress", "logging", "web"):
        assert getattr(shipped, section) == getattr(defaults, section), section
    assert shipped.ingest.model_dump(exclude={"allowed_callers"}) == defaults.ingest.model_dump(
        exclude={"allowed_callers"})


def _documented_keys(section: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in section.items():
        keys.add(prefix + key)
        if isinstance(value, dict):
            keys |= _documented_keys(value, prefix + key + ".")
    return keys


def _model_keys(model, prefix: str = "") -> set[str]:
    keys = set()
    for name, field in type(model).model_fields.items():
        keys.add(prefix + name)
        value = getattr(model, name)
        if hasattr(type(value), "model_fields"):
            keys |= _model_keys(value, prefix + name + ".")
    return keys


def test_config_yaml_documents_every_setting():
    documented = _documented_keys(yaml.safe_load(SHIPPED.read_text()))
    missing = _model_keys(GatewayConfig()) - documented - {"deid.profiles"}
    assert not missing, f"settings missing from config.yaml: {sorted(missing)}"


@pytest.mark.parametrize(
    "text, named",
    [
        ("ingest: {port: 70000}", "ingest.port"),
        ("ingest: {ae_title: THIS_TITLE_IS_TOO_LONG}", "ingest.ae_title"),
        ("queue: {stable_after: -1}", "queue.stable_after"),
        ("egress: {destinations: [{name: a, ae_title: X, host: h}]}", "egress.destinations.0"),
        ("egress: {destinations: [{name: a, ae_title: X, host: h, port: 0}]}", "egress.destinations.0.port"),
        ("ingest: {prot: 104}", "ingest.prot"),
    ],
)
def test_a_bad_setting_stops_start_up_naming_it(tmp_path, text, named):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_config(path)


def test_the_secret_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("DEID_GATEWAY_SECRET", "from-env")
    assert load_config(None).deid.secret.get_secret_value() == "from-env"


def test_the_cli_reports_a_bad_configuration_and_exits_2(tmp_path, capsys):
    from gateway.cli import main

    path = tmp_path / "config.yaml"
    path.write_text("ingest: {port: 0}")
    assert main(["status", "--config", str(path)]) == 2
    assert "ingest.port" in capsys.readouterr().err


def test_a_destination_naming_an_unknown_profile_stops_start_up(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("egress: {destinations: [{name: a, ae_title: X, host: h, port: 104, profile: reserch}]}")
    with pytest.raises(ConfigError, match=r"egress\.destinations\.0\.profile"):
        load_config(path)


def test_the_receiver_runs_a_process_per_core_unless_told(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1})
    assert GatewayConfig().ingest.process_count == 2
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(32)))
    assert GatewayConfig().ingest.process_count == 4  # past a few, the disk bounds ingest
    assert GatewayConfig(ingest={"processes": 1}).ingest.process_count == 1
