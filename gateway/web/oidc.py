"""The console's OpenID Connect client: the provider's metadata and keys, the authorization URL,
redeeming a code, and checking the ID token it returns.

The provider is reached over HTTPS only, with the gateway's TLS policy (``web.oidc.ca_file``,
else the system's CAs; host names checked), and nothing it says is taken on trust: its
discovery document must name the configured issuer, and an ID token must be signed by one of
its published keys (RS256 or ES256, never ``none`` or a shared secret), be issued by it, for
this client, unexpired, and carry the nonce this browser was given. The code is bound to the
browser by PKCE (S256). Its keys are fetched again when a token names a key not seen yet (the
provider rotated them), at most once a minute.

Errors are :class:`SignInFailed` with a reason from a fixed vocabulary: nothing the provider or
the token says is quoted in a page, a log line or the audit trail.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from urllib.parse import urlencode

import requests
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from gateway import tls
from gateway.egress.config import TlsSettings
from gateway.egress.https import TlsAdapter, origin, secret
from gateway.web.config import OidcConfig

ALGORITHMS = ["RS256", "ES256"]
TIMEOUT = 10.0
LEEWAY = 60  # seconds of clock difference allowed between the provider and the gateway
KEYS_REFETCH_SECONDS = 60.0

# Reasons, as audited and shown.
PROVIDER_UNREACHABLE = "identity provider unreachable"
PROVIDER_REFUSED = "identity provider refused the sign-in"
TOKEN_INVALID = "identity token not valid"
NO_NAME = "identity token names no user"


class SignInFailed(Exception):
    """Why a sign-in failed, in the fixed vocabulary above."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class Provider:
    """One identity provider, its metadata and keys fetched on first use and kept."""

    def __init__(self, oidc: OidcConfig):
        self.oidc = oidc
        self.client_secret = secret(oidc.client_secret_env, oidc.client_secret_file, "web.oidc.client_secret")
        self.http = requests.Session()
        self.http.trust_env = False  # no proxy or CA bundle from the environment
        self.http.max_redirects = 0
        self._context = tls.client_context(TlsSettings(ca_file=oidc.ca_file), "web.oidc")
        self._mounted: set[str] = set()
        self._metadata: dict | None = None
        self._keys: KeySet | None = None
        self._keys_fetched = 0.0
        self._lock = threading.Lock()

    # -- talking to the provider ------------------------------------------------------------
    def _get(self, url: str) -> dict:
        return self._call("GET", url)

    def _call(self, method: str, url: str, **kwargs) -> dict:
        if not url.lower().startswith("https://"):
            raise SignInFailed(PROVIDER_UNREACHABLE)  # a discovery document pointing to http://
        base = origin(url)
        if base not in self._mounted:
            self.http.mount(base, TlsAdapter(self._context))
            self._mounted.add(base)
        try:
            response = self.http.request(method, url, timeout=TIMEOUT, **kwargs)
        except requests.RequestException:
            raise SignInFailed(PROVIDER_UNREACHABLE) from None
        if response.status_code >= 400:
            raise SignInFailed(PROVIDER_REFUSED)
        try:
            return response.json()
        except ValueError:
            raise SignInFailed(PROVIDER_REFUSED) from None

    def metadata(self) -> dict:
        with self._lock:
            if self._metadata is None:
                found = self._get(self.oidc.issuer.rstrip("/") + "/.well-known/openid-configuration")
                if found.get("issuer") != self.oidc.issuer:
                    raise SignInFailed(PROVIDER_REFUSED)
                self._metadata = found
            return self._metadata

    def _key_set(self, refresh: bool) -> KeySet:
        with self._lock:
            due = time.monotonic() - self._keys_fetched >= KEYS_REFETCH_SECONDS
            if self._keys is None or (refresh and due):
                try:
                    self._keys = KeySet.import_key_set(self._get(self._metadata["jwks_uri"]))
                except (JoseError, KeyError, TypeError, ValueError):
                    raise SignInFailed(PROVIDER_REFUSED) from None
                self._keys_fetched = time.monotonic()
            return self._keys

    # -- the flow ---------------------------------------------------------------------------
    def authorization_url(self, state: str, nonce: str, verifier: str) -> str:
        query = {"response_type": "code", "client_id": self.oidc.client_id, "redirect_uri": self.oidc.redirect_url,
                 "scope": " ".join(self.oidc.scopes), "state": state, "nonce": nonce,
                 "code_challenge": pkce_challenge(verifier), "code_challenge_method": "S256"}
        return f"{self.metadata()['authorization_endpoint']}?{urlencode(query)}"

    def redeem(self, code: str, verifier: str) -> str:
        """The ID token the provider gives for ``code`` (client_secret_basic, PKCE verifier)."""
        answer = self._call("POST", self.metadata()["token_endpoint"],
                            auth=(self.oidc.client_id, self.client_secret),
                            data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                                  "redirect_uri": self.oidc.redirect_url})
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            raise SignInFailed(PROVIDER_REFUSED)
        return id_token

    def identity(self, id_token: str, nonce: str) -> dict:
        """The ID token's claims, once its signature, issuer, audience, times and nonce hold."""
        self.metadata()
        try:
            token = self._decode(id_token, refresh=False)
        except JoseError:
            token = self._decode(id_token, refresh=True)  # perhaps a key the provider rotated in
        claims = token.claims
        registry = jwt.JWTClaimsRegistry(leeway=LEEWAY, iss={"essential": True, "value": self.oidc.issuer},
                                         aud={"essential": True, "value": self.oidc.client_id},
                                         exp={"essential": True}, iat={"essential": True},
                                         nonce={"essential": True, "value": nonce})
        try:
            registry.validate(claims)
        except JoseError:
            raise SignInFailed(TOKEN_INVALID) from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.oidc.client_id:
            raise SignInFailed(TOKEN_INVALID)
        return claims

    def _decode(self, id_token: str, refresh: bool):
        try:
            return jwt.decode(id_token, self._key_set(refresh), algorithms=ALGORITHMS)
        except JoseError:
            if refresh:
                raise SignInFailed(TOKEN_INVALID) from None
            raise
        except (ValueError, TypeError):
            raise SignInFailed(TOKEN_INVALID) from None
