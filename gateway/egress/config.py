"""Settings of the research-archive destinations and of delivery retries."""

from pydantic import Field

from gateway.settings_base import Section


class Destination(Section):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    ae_title: str = Field(min_length=1, max_length=16)
    host: str
    port: int = Field(ge=1, le=65535)
    # Calling AE title the gateway presents; the receiver's own AE title when empty.
    calling_ae_title: str | None = Field(default=None, max_length=16)
    # De-identification profile for this destination; the default profile when empty.
    profile: str | None = None
    timeout: float = Field(default=30.0, gt=0)


class EgressConfig(Section):
    destinations: list[Destination] = Field(default_factory=list)
    # Attempts per instance and destination before the study is marked failed.
    max_attempts: int = Field(default=8, ge=1)
    backoff_initial: float = Field(default=2.0, gt=0)
    backoff_max: float = Field(default=300.0, gt=0)
    poll_interval: float = Field(default=1.0, gt=0)
    # Instances sent per association.
    batch_size: int = Field(default=200, ge=1)
