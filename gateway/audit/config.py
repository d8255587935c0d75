"""Settings of logging and of the audit review web page."""

from pathlib import Path

from pydantic import Field

from gateway.settings_base import Section


class LoggingConfig(Section):
    level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    file: Path | None = None


class WebConfig(Section):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8088, ge=1, le=65535)
