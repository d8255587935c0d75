"""Settings of the operator's console (``deid-gateway web``, or ``serve`` with ``web.enabled``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from gateway.settings_base import Section


class WebConfig(Section):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8088, ge=1, le=65535)
    # Local accounts, argon2 hashes, mode 0600 (``deid-gateway users ...`` writes it);
    # <storage.root>/web/users.json when unset. The console does not start without one.
    users_file: Path | None = None
    # HTTPS served by the console itself. Off loopback, either this or behind_proxy is required.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # A TLS-terminating reverse proxy stands in front (see README, "Reviewing a study"): cookies
    # are marked Secure, and X-Forwarded-For/-Proto are believed from proxy_addresses only.
    behind_proxy: bool = False
    proxy_addresses: list[str] = Field(default_factory=lambda: ["127.0.0.1"])
    # A login lasts this long (signed cookie; changing a user's password ends their sessions).
    session_hours: float = Field(default=8.0, gt=0, le=24 * 7)
    # Failed logins of one user (or from one address, four times as many) within the window
    # lock further attempts until the window has passed.
    login_max_failures: int = Field(default=5, ge=1)
    login_window_minutes: float = Field(default=15.0, gt=0)
    # Study page: thumbnails per series, frames shown of a multi-frame instance, longest side.
    thumbnails_per_series: int = Field(default=8, ge=1, le=100)
    thumbnail_frames: int = Field(default=3, ge=1, le=16)
    thumbnail_size: int = Field(default=320, ge=64, le=1024)

    @model_validator(mode="after")
    def _tls_pair(self) -> WebConfig:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("web: tls_cert_file and tls_key_file go together")
        return self

    def users_path(self, storage_root: Path) -> Path:
        return self.users_file or Path(storage_root) / "web" / "users.json"

    @property
    def https(self) -> bool:
        """Whether browsers reach the console over HTTPS (its own, or the proxy's)."""
        return self.tls_cert_file is not None or self.behind_proxy
