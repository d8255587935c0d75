"""Bearer tokens for machines: STOW-RS senders and metrics scrapers.

The gateway generates each token (256 random bits) and the configuration keeps only its SHA-256.
A slow password hash (argon2, as for console accounts) protects secrets people choose and might
guess; a generated token cannot be guessed, so a fast hash is as safe here, and checking one
costs microseconds. With argon2 every request, authenticated or not, would cost the server tens
of milliseconds and tens of megabytes: anyone reaching the port could spend its CPU by knocking.

Run ``python -m gateway.web.tokens`` for a new token: it prints the token (for the sender or
the scraper, once) and the line to put in ``config.yaml``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

PREFIX = "dgw_"  # lets secret scanners recognise a leaked token


def new_token() -> tuple[str, str]:
    """A fresh token and its SHA-256 (hex), the form kept in the configuration."""
    token = PREFIX + secrets.token_urlsafe(32)
    return token, digest(token)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def presented(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def matches(token: str | None, digests: Sequence[str | None]) -> list[bool]:
    """For each configured digest, whether ``token`` is its token (constant time per entry)."""
    if not token:
        return [False] * len(digests)
    mine = digest(token)
    return [d is not None and hmac.compare_digest(mine, d) for d in digests]


def main() -> None:
    token, hashed = new_token()
    print(f"token (give it to the sender or scraper; it is not kept anywhere): {token}")
    print(f"for config.yaml: token_sha256: {hashed}   (or in web.metrics_token_sha256)")


if __name__ == "__main__":
    main()
