"""Settings of the research-archive destinations and of delivery retries.

Credentials are never written in this file: a destination names the environment variable or the
file (mode 0600) that holds each one. A credential bound for a plain ``http://`` URL is refused
here, at load time, unless ``allow_credentials_over_http`` says the site means it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from gateway.settings_base import Section


class TlsSettings(Section):
    """TLS towards one archive (DICOM TLS for dimse, HTTPS for stow-rs); see gateway/tls.py."""

    # PEM bundle of the CAs that may sign the archive's certificate; the system's store when null.
    ca_file: Path | None = None
    # The gateway's client certificate (PEM), for archives that authenticate their senders.
    cert_file: Path | None = None
    # Its private key (PEM, mode 0600); null when cert_file holds the key too.
    key_file: Path | None = None
    # dimse: the name the archive's certificate must carry; host when null.
    server_name: str | None = None
    min_version: Literal["1.2", "1.3"] = "1.2"

    @model_validator(mode="after")
    def _key_with_certificate(self) -> TlsSettings:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("tls.key_file needs tls.cert_file")
        return self


class OAuthSettings(Section):
    """OAuth 2.0 client credentials grant (RFC 6749 4.4): the bearer token is fetched from
    ``token_url`` and fetched again when it expires or the archive answers 401."""

    token_url: str = Field(min_length=1)
    client_id: str = Field(min_length=1)
    # The client secret: the name of an environment variable, or a file (mode 0600).
    client_secret_env: str | None = None
    client_secret_file: Path | None = None
    scope: str | None = None
    # How the client authenticates to the token endpoint.
    auth_method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    # PEM bundle for the token endpoint's certificate; the system's store when null.
    ca_file: Path | None = None

    @model_validator(mode="after")
    def _one_secret(self) -> OAuthSettings:
        if (self.client_secret_env is None) == (self.client_secret_file is None):
            raise ValueError("oauth needs exactly one of client_secret_env and client_secret_file")
        return self


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
    # Name of the environment variable holding the password (never the password itself) ...
    password_env: str | None = None
    # ... or a file holding it (mode 0600).
    password_file: Path | None = None
    # A bearer token: the name of an environment variable, or a file (mode 0600, read again
    # for every request, so an outside agent may renew it) ...
    token_env: str | None = None
    token_file: Path | None = None
    # ... or fetched with the OAuth 2.0 client credentials grant.
    oauth: OAuthSettings | None = None
    # TLS: dimse connects with DICOM TLS when set; stow-rs uses it for https:// URLs.
    tls: TlsSettings | None = None
    # Send credentials over plain http:// all the same (a test bench; never across a network).
    allow_credentials_over_http: bool = False
    # De-identification profile for this destination; the default profile when empty.
    profile: str | None = None
    timeout: float = Field(default=30.0, gt=0)
    # dimse: associations open at once to this archive while deliveries wait (each instance is
    # sent as soon as it is de-identified; several associations keep the archive busy).
    associations: int = Field(default=2, ge=1, le=16)

    @model_validator(mode="after")
    def _addressable(self) -> Destination:
        if self.protocol == "dimse" and not (self.ae_title and self.host and self.port):
            raise ValueError("a dimse destination needs ae_title, host and port")
        if self.protocol == "stow-rs" and not self.url:
            raise ValueError("a stow-rs destination needs url")
        return self

    @model_validator(mode="after")
    def _credentials_safe(self) -> Destination:
        """One kind of credential at most, for the protocol that uses it, never in clear."""
        kinds = [bool(self.username or self.password_env or self.password_file),
                 bool(self.token_env or self.token_file), self.oauth is not None]
        if sum(kinds) > 1:
            raise ValueError("give one of username/password, token_env/token_file, or oauth")
        if self.password_env and self.password_file or self.token_env and self.token_file:
            raise ValueError("give a credential by environment variable or by file, not both")
        if self.protocol == "dimse":
            if any(kinds) or self.url:
                raise ValueError("a dimse destination takes no url or HTTP credentials")
            return self
        if self.tls is not None and self.tls.server_name is not None:
            raise ValueError("tls.server_name applies to dimse destinations; stow-rs checks the url's host")
        scheme = urlsplit(self.url).scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError("url must start with https:// (or http://)")
        if scheme == "http" and self.tls is not None:
            raise ValueError("tls settings need an https:// url")
        plain = [what for what, sent in [
            ("credentials", scheme == "http" and (any(kinds) or bool(urlsplit(self.url).password))),
            ("the OAuth client secret", self.oauth is not None
             and urlsplit(self.oauth.token_url).scheme.lower() != "https"),
        ] if sent]
        if plain and not self.allow_credentials_over_http:
            raise ValueError(f"{plain[0]} would travel over plain http://: use https://, or set "
                             "allow_credentials_over_http: true for a test bench")
        return self

    def private_files(self) -> list[tuple[str, Path]]:
        """(setting, path) of every file of this destination that holds a key or a credential."""
        files = [("password_file", self.password_file), ("token_file", self.token_file)]
        if self.oauth is not None:
            files.append(("oauth.client_secret_file", self.oauth.client_secret_file))
        if self.tls is not None and self.tls.cert_file is not None:
            files.append(("tls.key_file", self.tls.key_file) if self.tls.key_file
                         else ("tls.cert_file", self.tls.cert_file))
        return [(setting, path) for setting, path in files if path is not None]


class EgressConfig(Section):
    destinations: list[Destination] = Field(default_factory=list)
    # Attempts per instance and destination before the study is marked failed.
    max_attempts: int = Field(default=8, ge=1)
    backoff_initial: float = Field(default=2.0, gt=0)
    backoff_max: float = Field(default=300.0, gt=0)
    poll_interval: float = Field(default=1.0, gt=0)
    # serve: the forwarder in a process of its own, so that sending to archives and the header
    # job each have a core (in one process, Python runs one thread at a time).
    own_process: bool = True
    # Instances sent per association (or per STOW-RS request).
    batch_size: int = Field(default=200, ge=1)
