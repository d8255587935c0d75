"""Where the gateway keeps files: spool (originals), outbox (de-identified), quarantine."""

from pathlib import Path

from pydantic import Field

from gateway.settings_base import Section


class StorageConfig(Section):
    root: Path = Path("var")
    spool_dir: Path | None = None
    outbox_dir: Path | None = None
    quarantine_dir: Path | None = None
    # Below this much free space the receiver answers 0xA700 (out of resources) instead of
    # acknowledging an instance it might not be able to keep.
    min_free_bytes: int = Field(default=256 * 1024**2, ge=0)
    # Hours to keep spooled originals after every destination accepted every instance.
    retention_hours: float = Field(default=0.0, ge=0)

    @property
    def spool(self) -> Path:
        return self.spool_dir or self.root / "spool"

    @property
    def intermediate(self) -> Path:
        """Instances between a pixel worker and a header worker: cleaned pixels under the
        original header, so they live with the originals and share their protection."""
        return self.spool / "intermediate"

    @property
    def outbox(self) -> Path:
        return self.outbox_dir or self.root / "outbox"

    @property
    def quarantine(self) -> Path:
        return self.quarantine_dir or self.root / "quarantine"
