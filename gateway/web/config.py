"""Settings of the audit review web page."""

from pydantic import Field

from gateway.settings_base import Section


class WebConfig(Section):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8088, ge=1, le=65535)
