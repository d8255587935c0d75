"""The HTTP session a STOW-RS destination is reached with: TLS, and its credential.

TLS follows :mod:`gateway.tls` (the destination's CA bundle alone, host name checked, client
certificate when set) through an adapter mounted for the archive's origin only, so an OAuth
token endpoint elsewhere keeps its own trust. The adapter ignores ``verify`` from the
environment (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE): nothing outside the configuration can widen
or switch off what is trusted.

Credentials are read when they are used, never kept in the configuration: a password or a
bearer token from its environment variable or its file (checked private, read again for every
request so an outside agent may renew it), or a token fetched by authlib's OAuth 2.0 client
credentials grant, which authlib fetches again once it expires.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import requests
from authlib.integrations.requests_client import OAuth2Session
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase, HTTPBasicAuth

from gateway import tls
from gateway.config import ConfigError
from gateway.egress.config import Destination, TlsSettings
from gateway.keys import read_private


class TlsAdapter(HTTPAdapter):
    """An adapter whose every connection uses one context of the gateway's TLS policy."""

    def __init__(self, context, **kwargs):
        self.context = context
        super().__init__(**kwargs)

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs):
        super().init_poolmanager(connections, maxsize, block, ssl_context=self.context, **pool_kwargs)

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        return super().proxy_manager_for(proxy, ssl_context=self.context, **proxy_kwargs)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, _ = super().build_connection_pool_key_attributes(request, True, None)
        return host_params, {"cert_reqs": "CERT_REQUIRED"}

    def cert_verify(self, conn, url, verify, cert):
        conn.cert_reqs = "CERT_REQUIRED"  # the context holds the CAs: no bundle is added to it
        conn.ca_certs = conn.ca_cert_dir = None
        conn.cert_file = conn.key_file = None


def origin(url: str) -> str:
    """``scheme://host:port/``: the prefix an adapter is mounted for."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.rsplit('@', 1)[-1].lower()}/"


def secret(env: str | None, file: Path | None, setting: str) -> str:
    """A credential from its environment variable or its private file; ConfigError when absent."""
    if file is not None:
        value = read_private(file, f"{setting}_file").decode("utf-8").strip()
        if not value:
            raise ConfigError(f"{setting}_file: {file} is empty")
        return value
    value = os.environ.get(env or "", "")
    if not value:
        raise ConfigError(f"{setting}_env: the environment variable {env} is not set")
    return value


class SecretBasicAuth(HTTPBasicAuth):
    """Basic authentication whose password is read when a request is sent."""

    def __init__(self, username: str, destination: Destination, where: str):
        super().__init__(username, "")
        self.destination, self.where = destination, where

    def __call__(self, request):
        self.password = secret(self.destination.password_env, self.destination.password_file,
                               f"{self.where}.password")
        return super().__call__(request)


class FileBearerAuth(AuthBase):
    """``Authorization: Bearer`` with the token read when a request is sent."""

    def __init__(self, destination: Destination, where: str):
        self.destination, self.where = destination, where

    def __call__(self, request):
        token = secret(self.destination.token_env, self.destination.token_file, f"{self.where}.token")
        request.headers["Authorization"] = f"Bearer {token}"
        return request


def build_session(destination: Destination) -> requests.Session:
    """The session for ``destination``; every credential it names is read once here, so a
    missing or world-readable one stops start-up rather than the first delivery."""
    where = f"egress.destinations.{destination.name}"
    oauth = destination.oauth
    if oauth is not None:
        session: requests.Session = OAuth2Session(
            client_id=oauth.client_id,
            client_secret=secret(oauth.client_secret_env, oauth.client_secret_file, f"{where}.oauth.client_secret"),
            token_endpoint_auth_method=oauth.auth_method, scope=oauth.scope,
            token_endpoint=oauth.token_url, grant_type="client_credentials",
            default_timeout=destination.timeout)
        if urlsplit(oauth.token_url).scheme.lower() == "https":
            settings = TlsSettings(ca_file=oauth.ca_file)
            session.mount(origin(oauth.token_url), TlsAdapter(tls.client_context(settings, f"{where}.oauth")))
    else:
        session = requests.Session()
        if destination.username:
            secret(destination.password_env, destination.password_file, f"{where}.password")
            session.auth = SecretBasicAuth(destination.username, destination, where)
        elif destination.token_env or destination.token_file:
            secret(destination.token_env, destination.token_file, f"{where}.token")
            session.auth = FileBearerAuth(destination, where)
    if urlsplit(destination.url).scheme.lower() == "https":
        settings = destination.tls or TlsSettings()
        session.mount(origin(destination.url), TlsAdapter(tls.client_context(settings, f"{where}.tls")))
    # Instances and credentials go to the configured URL only: a redirect (perhaps to http://,
    # where a 307 would resend the body in clear) fails the attempt instead.
    session.max_redirects = 0
    return session
