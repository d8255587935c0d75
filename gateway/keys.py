"""Keyed digests that identify originals in the database without storing them."""

from __future__ import annotations

import hashlib
import hmac


def keyed_digest(secret: bytes, purpose: str, value: str) -> str:
    """HMAC-SHA256 of ``value``, domain-separated by ``purpose`` so digests never collide."""
    message = purpose.encode() + b"\x00" + value.encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()
