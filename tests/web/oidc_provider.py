"""An OpenID Connect provider for the console's sign-on tests: the authorization code flow with
PKCE, served over HTTPS on a loopback port (uvicorn in a thread, a trustme certificate), with
ID tokens signed by an RSA key made at test time (joserfc).

The provider shows its own sign-in page, whose form the user submits, as a real one does (a
browser then comes back to the console from another site's page). Who is "at the keyboard"
is set by the test (``provider.user``), as is the
way it misbehaves (``provider.fault``): a token for another audience, from another issuer,
with another nonce, already expired, signed by a key it does not publish, or signed ``none``.
It checks what a real provider checks of the client: its id and secret, the registered
redirect URL, a code used once, and the PKCE verifier.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from tests.peers import free_port
from tests.web.helpers import in_thread

CLIENT_ID, CLIENT_SECRET = "deid-console", "console-client-secret"
FAULTS = ("audience", "issuer", "nonce", "expired", "unpublished key", "unsigned")


class OidcProvider:
    def __init__(self, pki, redirect_url: str):
        self.pki, self.redirect_url = pki, redirect_url
        self.port = free_port()
        self.key = RSAKey.generate_key(2048, parameters={"kid": "key-1", "use": "sig", "alg": "RS256"})
        self.user: dict = {"preferred_username": "jane.doe", "groups": ["radiology-it"]}
        self.fault: str | None = None
        self.codes: dict[str, dict] = {}
        self.tickets: dict[str, dict] = {}  # sign-ins shown to the user, not yet submitted
        self.token_requests = 0
        self.app = self._app()

    @property
    def issuer(self) -> str:
        return f"https://localhost:{self.port}"

    def _app(self) -> FastAPI:
        app = FastAPI()
        app.get("/.well-known/openid-configuration")(self._discovery)
        app.get("/jwks")(lambda: KeySet([self.key]).as_dict(private=False))
        app.get("/authorize")(self._authorize)
        app.get("/authorize/done")(self._signed_in)
        app.post("/token")(self._token)
        return app

    def _discovery(self):
        return {"issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"], "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"], "subject_types_supported": ["public"]}

    def _authorize(self, request: Request):
        query = request.query_params
        if query.get("client_id") != CLIENT_ID or query.get("redirect_uri") != self.redirect_url:
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        ticket = secrets.token_urlsafe(16)
        self.tickets[ticket] = dict(query)
        return HTMLResponse(f'''<!doctype html><title>Hospital sign-in</title>
<form method="get" action="/authorize/done"><input type="hidden" name="ticket" value="{ticket}">
<button type="submit">Sign in as {self.user.get("preferred_username", "")}</button></form>''')

    def _signed_in(self, ticket: str = ""):
        """The user submitted the provider's own page: back to the client with a code."""
        query = self.tickets.pop(ticket, None)
        if query is None:
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"nonce": query.get("nonce"), "challenge": query["code_challenge"], "user": dict(self.user)}
        return RedirectResponse(f"{self.redirect_url}?{urlencode({'code': code, 'state': query['state']})}", 303)

    def _token(self, request: Request, grant_type: str = Form(""), code: str = Form(""),
               code_verifier: str = Form(""), redirect_uri: str = Form("")):
        self.token_requests += 1
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        grant = self.codes.pop(code, None)  # a code is good once
        if request.headers.get("authorization") != expected:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if grant_type != "authorization_code" or grant is None or redirect_uri != self.redirect_url:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest()).rstrip(b"=").decode()
        if challenge != grant["challenge"]:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        return {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300,
                "id_token": self._id_token(grant)}

    def _id_token(self, grant: dict) -> str:
        now, fault = int(time.time()), self.fault
        claims = {"iss": self.issuer + ("/other" if fault == "issuer" else ""),
                  "aud": "another-client" if fault == "audience" else CLIENT_ID, "sub": "subject-1",
                  "iat": now - (7200 if fault == "expired" else 0), "exp": now + (-3600 if fault == "expired" else 300),
                  "nonce": "another-nonce" if fault == "nonce" else grant["nonce"], **grant["user"]}
        if fault == "unsigned":
            header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
            body = jwt.encode({"alg": "RS256", "kid": self.key.kid}, claims, self.key).split(".")[1]
            return f"{header}.{body}."
        key = RSAKey.generate_key(2048, parameters={"kid": self.key.kid}) if fault == "unpublished key" else self.key
        return jwt.encode({"alg": "RS256", "kid": self.key.kid}, claims, key)

    @contextmanager
    def serving(self):
        import uvicorn

        server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                               lifespan="off", ssl_certfile=str(self.pki.gateway.cert),
                                               ssl_keyfile=str(self.pki.gateway.key)))
        with in_thread(server, "the identity provider"):  # the console keeps its connection open
            yield self


def write_secret(folder: Path) -> Path:
    path = folder / "oidc-client-secret"
    path.write_text(CLIENT_SECRET + "\n")
    path.chmod(0o600)
    return path
