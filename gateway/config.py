"""The one typed configuration object, loaded from ``config.yaml``.

Every section lives beside the code it configures; this module only assembles them, reads the
YAML file and applies the environment overrides for secrets. A bad value stops start-up with a
message naming the setting (``ingest.port: Input should be less than or equal to 65535``).
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import Field, SecretStr, ValidationError, model_validator

from gateway.biometric.config import BiometricConfig
from gateway.db import DatabaseConfig
from gateway.deid.config import DeidConfig
from gateway.egress.config import EgressConfig
from gateway.ingest.config import IngestConfig
from gateway.logs import LoggingConfig
from gateway.pixels.config import PixelsConfig
from gateway.pull.config import PullConfig
from gateway.queue.config import QueueConfig
from gateway.rules.config import RulesConfig
from gateway.settings_base import Section
from gateway.storage_config import StorageConfig
from gateway.web.config import WebConfig

SECRET_ENV = "DEID_GATEWAY_SECRET"
DATABASE_URL_ENV = "DEID_GATEWAY_DATABASE_URL"


class ConfigError(Exception):
    """A configuration problem; its message names the offending setting."""


class GatewayConfig(Section):
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    queue: QueueConfig = Field(default_factory=QueueConfig)
    deid: DeidConfig = Field(default_factory=DeidConfig)
    pixels: PixelsConfig = Field(default_factory=PixelsConfig)
    biometric: BiometricConfig = Field(default_factory=BiometricConfig)
    egress: EgressConfig = Field(default_factory=EgressConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    rules: RulesConfig = Field(default_factory=RulesConfig)
    pull: PullConfig = Field(default_factory=PullConfig)

    @model_validator(mode="after")
    def _destinations_consistent(self) -> GatewayConfig:
        names = [d.name for d in self.egress.destinations]
        if len(names) != len(set(names)):
            raise ValueError("egress.destinations: destination names must be unique")
        for i, destination in enumerate(self.egress.destinations):
            if destination.profile is not None and destination.profile not in self.deid.profiles:
                raise ValueError(f"egress.destinations.{i}.profile: unknown profile {destination.profile!r}")
        self.rules.check_references(names, list(self.deid.profiles))
        return self

    def profile_by_destination(self) -> dict[str, str]:
        """Destination name -> the de-identification profile whose output it receives: its own
        ``profile``, else ``deid.profile``. The one place this is decided."""
        return {d.name: d.profile or self.deid.profile for d in self.egress.destinations}

    def profiles_in_use(self) -> list[str]:
        """The profiles some destination receives, in the order destinations are listed; the
        default profile alone when none is configured (the outbox still gets its files)."""
        return list(dict.fromkeys(self.profile_by_destination().values())) or [self.deid.profile]


def _apply_environment(raw: dict) -> dict:
    """Secrets and the database URL may come from the environment instead of the file."""
    if secret := os.environ.get(SECRET_ENV):
        raw.setdefault("deid", {})["secret"] = secret
    if url := os.environ.get(DATABASE_URL_ENV):
        raw.setdefault("database", {})["url"] = url
    return raw


def _describe(error: ValidationError) -> str:
    lines = []
    for problem in error.errors():
        message = problem["msg"].removeprefix("Value error, ")
        where = ".".join(str(part) for part in problem["loc"])
        lines.append(f"{where}: {message}" if where else message)
    return "invalid configuration:\n  " + "\n  ".join(lines)


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> GatewayConfig:
    """Read ``path`` (embedded defaults when None), apply environment and explicit overrides."""
    raw: dict = {}
    if path is not None:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from None
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"configuration file {path} is not valid YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"configuration file {path} must hold a mapping of sections")
    raw = _apply_environment(raw)
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {}).update(values)
    try:
        return GatewayConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


__all__ = ["ConfigError", "GatewayConfig", "SecretStr", "load_config"]
