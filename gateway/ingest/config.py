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
    # An instance larger than this is refused with 0xA700 rather than filling the disk: the
    # association is aborted as soon as the bytes received pass it, and none of them is kept.
    max_instance_bytes: int = Field(default=2 * 1024**3, gt=0)
    # A deflated data set is refused (0xA700) once inflating it yields more than this. A few
    # hundred kilobytes of deflate can declare gigabytes of zeros; the worker inflates the
    # spooled file again in memory, so this also bounds what it will allocate. None: the same
    # as max_instance_bytes, as if the sender had sent the data set uncompressed.
    max_inflated_bytes: int | None = Field(default=None, gt=0)
    # Largest image a decoder may be asked for: Rows x Columns x frames x samples x bytes per
    # sample, as the header declares it (native or compressed; a 1 KB RLE file can declare
    # 20000 x 20000 pixels, and the decoder allocates what is declared). 1 GiB holds a
    # 1000-slice 512x512 16-bit volume, far past what modalities send as one instance.
    max_pixel_bytes: int = Field(default=1024**3, gt=0)
    # Most frames one instance may declare. Decoders keep per-frame bookkeeping, so a
    # million one-pixel frames costs memory and time that max_pixel_bytes does not see.
    # Long ultrasound or angiography cines have a few thousand frames.
    max_frames: int = Field(default=50_000, gt=0)

    @property
    def inflated_limit(self) -> int:
        """Bytes a deflated data set may inflate to (see ``max_inflated_bytes``)."""
        return self.max_inflated_bytes or self.max_instance_bytes

    @field_validator("ae_title")
    @classmethod
    def _ae_title_chars(cls, value: str) -> str:
        if value != value.strip() or "\\" in value:
            raise ValueError("AE titles have no leading/trailing spaces and no backslash")
        return value
