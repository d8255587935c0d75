"""Keyed, deterministic UID replacement (action U).

HMAC-SHA256 of the original UID under the gateway secret, read as an integer below 2**128 and
written under the 2.25 root (ITU-T X.667 UUID-derived UIDs): at most 5 + 39 = 44 characters.
The same UID maps to the same replacement in every instance, study, worker and restart, so
references between instances stay consistent; without the secret the mapping cannot be inverted
or recomputed from a guessed original.
"""

from __future__ import annotations

from functools import lru_cache

from gateway import keys


@lru_cache(maxsize=65536)
def remap_uid(uid: str, secret: bytes) -> str:
    """Replace ``uid`` with ``2.25.<int>``; the same (uid, secret) always gives the same answer."""
    clean = uid.strip().rstrip("\x00")
    digest = keys.keyed_hash(secret, keys.UID, clean.encode("ascii", "replace"))
    return "2.25." + str(int.from_bytes(digest[:16], "big"))
