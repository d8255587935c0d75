"""Settings of the research-archive destinations and of delivery retries."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from gateway.settings_base import Section


class Destination(Section):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    # "dimse": C-STORE to ae_title@host:port. "stow-rs": DICOMweb STOW-RS to url.
    protocol: Literal["dimse", "stow-rs"] = "dimse"
    ae_title: str | None = Field(default=None, min_length=1, max_length=16)
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    # Calling AE title the gateway presents; the receiver's own AE title when empty.
    calling_ae_title: str | None = Field(default=None, max_length=16)
    # DICOMweb service root, e.g. https://archive.example.org/dicom-web
    url: str | None = None
    username: str | None = None
    # Name of the environment variable holding the password (never the password itself).
    password_env: str | None = None
    # De-identification profile for this destination; the default profile when empty.
    profile: str | None = None
    timeout: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _addressable(self) -> Destination:
        if self.protocol == "dimse" and not (self.ae_title and self.host and self.port):
            raise ValueError("a dimse destination needs ae_title, host and port")
        if self.protocol == "stow-rs" and not self.url:
            raise ValueError("a stow-rs destination needs url")
        return self


class EgressConfig(Section):
    destinations: list[Destination] = Field(default_factory=list)
    # Attempts per instance and destination before the study is marked failed.
    max_attempts: int = Field(default=8, ge=1)
    backoff_initial: float = Field(default=2.0, gt=0)
    backoff_max: float = Field(default=300.0, gt=0)
    poll_interval: float = Field(default=1.0, gt=0)
    # Instances sent per association (or per STOW-RS request).
    batch_size: int = Field(default=200, ge=1)
