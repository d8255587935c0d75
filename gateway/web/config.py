"""Settings of the operator's console (``deid-gateway web``, or ``serve`` with ``web.enabled``)."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from gateway.ingest.config import PeerIdentity
from gateway.settings_base import Section

SHA256_HEX = r"^[0-9a-f]{64}$"


class StowSender(PeerIdentity):
    """One sender allowed to store over DICOMweb (``POST /dicomweb/studies``).

    A request is admitted when every credential the entry names matches: its bearer token
    (kept here only as the SHA-256 of a generated token, ``python -m gateway.web.tokens``), its
    TLS client certificate (``cert_subject``/``cert_san``, verified against
    ``web.stow.client_ca_file``), and its address (``ip``). ``calling_ae`` is the name the
    gateway gives what it stores, as a C-STORE sender's calling AE title: routing rules and the
    audit trail see it.
    """

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    calling_ae: str = Field(min_length=1, max_length=16)
    token_sha256: str | None = Field(default=None, pattern=SHA256_HEX)

    @field_validator("calling_ae")
    @classmethod
    def _ae_title_chars(cls, value: str) -> str:
        if value != value.strip() or "\\" in value or not (value.isascii() and value.isprintable()):
            raise ValueError("an AE title is printable ASCII, without leading/trailing spaces or backslash")
        return value

    @model_validator(mode="after")
    def _some_credential(self) -> StowSender:
        if self.token_sha256 is None and self.cert_subject is None and self.cert_san is None:
            raise ValueError(f"web.stow.senders ({self.name}): give token_sha256, cert_subject or cert_san; "
                             "an address alone does not authenticate")
        return self


class StowConfig(Section):
    """DICOMweb STOW-RS ingest on the console's server, beside the C-STORE receiver."""

    enabled: bool = False
    senders: list[StowSender] = Field(default_factory=list)
    # The CAs that may sign senders' client certificates; set, the console's own TLS asks every
    # client for a certificate (optional: browsers without one still reach the console).
    client_ca_file: Path | None = None
    # Caps enforced while the request streams in. A part (one instance) larger than
    # max_part_bytes is dropped as it passes the limit (null: ingest.max_instance_bytes); a
    # request passing max_request_bytes or max_parts is cut off there.
    max_part_bytes: int | None = Field(default=None, gt=0)
    max_request_bytes: int = Field(default=8 * 1024**3, gt=0)
    max_parts: int = Field(default=10_000, ge=1)

    @model_validator(mode="after")
    def _senders(self) -> StowConfig:
        names = [s.name for s in self.senders]
        if len(names) != len(set(names)):
            raise ValueError("web.stow.senders: names must be unique")
        if self.enabled and not self.senders:
            raise ValueError("web.stow.enabled needs at least one entry in web.stow.senders")
        if any(s.needs_certificate for s in self.senders) and self.client_ca_file is None:
            raise ValueError("web.stow.client_ca_file is needed to verify senders' client certificates")
        return self


class OidcConfig(Section):
    """Single sign-on through the hospital's identity provider (OpenID Connect, authorization
    code flow with PKCE): accounts, passwords, MFA and leavers stay the provider's business;
    the console maps the provider's groups (or roles) to its own roles."""

    enabled: bool = False
    # The provider's issuer, exactly as its discovery document gives it (https only).
    issuer: str = ""
    client_id: str = ""
    # The client secret: the name of an environment variable, or a file (mode 0600).
    client_secret_env: str | None = None
    client_secret_file: Path | None = None
    # Where the provider sends the browser back, as registered with it:
    # https://<console>/login/sso/callback.
    redirect_url: str = ""
    # PEM bundle for the provider's certificate; the system's store when null.
    ca_file: Path | None = None
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile"])
    # The claim naming the user (shown and audited as sso:<value>) and the claim listing groups.
    name_claim: str = "preferred_username"
    groups_claim: str = "groups"
    # Console role -> the groups that grant it; the highest role granted wins; no group, no entry.
    roles: dict[str, list[str]] = Field(default_factory=dict)
    # The login form's button.
    label: str = Field(default="Sign in with the hospital's account", max_length=80)

    @model_validator(mode="after")
    def _complete(self) -> OidcConfig:
        if not self.enabled:
            return self
        for url, setting in ((self.issuer, "issuer"), (self.redirect_url, "redirect_url")):
            if not url.lower().startswith("https://"):
                raise ValueError(f"web.oidc.{setting}: an https:// URL is needed")
        if not self.client_id:
            raise ValueError("web.oidc.client_id is needed")
        if (self.client_secret_env is None) == (self.client_secret_file is None):
            raise ValueError("web.oidc needs exactly one of client_secret_env and client_secret_file")
        if not any(self.roles.values()):
            raise ValueError("web.oidc.roles: map at least one group to a role (viewer, operator or admin)")
        unknown = set(self.roles) - {"viewer", "operator", "admin"}
        if unknown:
            raise ValueError(f"web.oidc.roles: roles are viewer, operator and admin, not {', '.join(sorted(unknown))}")
        return self


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
    # ... and ends sooner after this long without a request (automatic logoff).
    idle_minutes: float = Field(default=30.0, ge=1, le=24 * 60)
    # Failed logins of one user (or from one address, four times as many; or of everyone together,
    # login_max_failures_overall) within the window lock further attempts until the window has
    # passed, except from a browser the user has logged in from within login_device_days, which
    # is held to its own failures (gateway/web/throttle.py).
    login_max_failures: int = Field(default=5, ge=1)
    login_window_minutes: float = Field(default=15.0, gt=0)
    login_max_failures_overall: int = Field(default=50, ge=1)
    login_device_days: float = Field(default=90.0, gt=0, le=400)
    # Study page: thumbnails per series, frames shown of a multi-frame instance, longest side.
    thumbnails_per_series: int = Field(default=8, ge=1, le=100)
    thumbnail_frames: int = Field(default=3, ge=1, le=16)
    thumbnail_size: int = Field(default=320, ge=64, le=1024)
    # /metrics answers a logged-in console user, or a scraper presenting one of these bearer
    # tokens (their SHA-256, as ``python -m gateway.web.tokens`` prints it).
    metrics_token_sha256: list[str] = Field(default_factory=list)
    stow: StowConfig = Field(default_factory=StowConfig)
    oidc: OidcConfig = Field(default_factory=OidcConfig)

    @model_validator(mode="after")
    def _tls_pair(self) -> WebConfig:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("web: tls_cert_file and tls_key_file go together")
        if self.stow.client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("web.stow.client_ca_file: client certificates need the console's own TLS "
                             "(web.tls_cert_file); a proxy in front would not pass them on")
        for token in self.metrics_token_sha256:
            if not re.fullmatch(SHA256_HEX, token):
                raise ValueError("web.metrics_token_sha256: each entry is a SHA-256 in hex (64 characters)")
        return self

    def users_path(self, storage_root: Path) -> Path:
        return self.users_file or Path(storage_root) / "web" / "users.json"

    @property
    def https(self) -> bool:
        """Whether browsers reach the console over HTTPS (its own, or the proxy's)."""
        return self.tls_cert_file is not None or self.behind_proxy
