"""Settings of the DICOM receiver (C-STORE / C-ECHO SCP)."""

from ipaddress import ip_network

from pydantic import Field, field_validator

from gateway.settings_base import Section


class CallerRule(Section):
    """One allowed calling application entity; ``ip`` may be an address or a network."""

    ae_title: str = Field(min_length=1, max_length=16)
    ip: str | None = None

    @field_validator("ip")
    @classmethod
    def _valid_network(cls, value: str | None) -> str | None:
        if value is not None:
            ip_network(value, strict=False)
        return value


class IngestConfig(Section):
    ae_title: str = Field(default="DEID_GATEWAY", min_length=1, max_length=16)
    host: str = "0.0.0.0"
    port: int = Field(default=11112, ge=1, le=65535)
    max_associations: int = Field(default=10, ge=1)
    max_pdu_length: int = Field(default=16382, ge=0)
    # Seconds an association may stay silent before it is aborted.
    network_timeout: float = Field(default=60.0, gt=0)
    allowed_callers: list[CallerRule] = Field(default_factory=list)
    # Accept any calling AE title. Off by default: a gateway that takes anything from anyone
    # turns into a relay for whatever lands on its port.
    allow_any_caller: bool = False
    # An instance larger than this is refused with 0xA700 rather than filling memory and disk.
    max_instance_bytes: int = Field(default=2 * 1024**3, gt=0)

    @field_validator("ae_title")
    @classmethod
    def _ae_title_chars(cls, value: str) -> str:
        if value != value.strip() or "\\" in value:
            raise ValueError("AE titles have no leading/trailing spaces and no backslash")
        return value
