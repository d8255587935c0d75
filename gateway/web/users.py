"""The console's local accounts: a JSON file of names, roles and argon2 hashes (pwdlib).

The file is the gateway user's alone (0600, refused otherwise, like a key file) and is re-read
when it changes, so ``deid-gateway users ...`` takes effect without a restart. Each user has a
``generation`` that a new password or role bumps: sessions carry it, and an older one is void.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from pwdlib import PasswordHash

from gateway.files import write_durably
from gateway.keys import check_private

VIEWER, OPERATOR, ADMIN = "viewer", "operator", "admin"
#: Each role may do what the roles before it may.
ROLES = (VIEWER, OPERATOR, ADMIN)
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
MIN_PASSWORD = 12

_hasher = PasswordHash.recommended()
#: Password hashes checked at once: each takes 64 MiB and a core for about 0.1 s, so more at a
#: time would only hold more memory while sharing the same cores.
HASHES_AT_ONCE = 2


@functools.cache
def _dummy() -> str:
    """A hash verified against when the user does not exist, so that an unknown name costs the
    same time. Made with the first store, not on import: a hash costs about 0.1 s of CPU and
    64 MiB, and every command of the CLI imports this module to build its parser."""
    return _hasher.hash("not-a-password-of-anyone")


class UserError(ValueError):
    """A bad name, role or password; the message says which rule it breaks."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    generation: int
    #: Signed on through the identity provider (``web.oidc``), not a local account.
    sso: bool = False

    def can(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise UserError("a user name is 1-63 lower-case letters, digits, '.', '_' or '-'")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"a role is one of {', '.join(ROLES)}")
    return role


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password has at least {MIN_PASSWORD} characters")
    return password


class UserStore:
    """The users file; safe to share between the console's threads."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._hashing = threading.BoundedSemaphore(HASHES_AT_ONCE)
        self._stamp: tuple[int, int] | None = None
        self._users: dict[str, dict] = {}
        _dummy()  # made now, so that the first unknown name costs no more than the next

    def _load(self) -> dict[str, dict]:
        """The file's users, read again only when its size or time changed."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._users = None, {}
            return self._users
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            check_private(self.path, "web.users_file")
            self._users = json.loads(self.path.read_text()).get("users", {})
            self._stamp = stamp
        return self._users

    def _save(self, users: dict[str, dict]) -> None:
        data = json.dumps({"users": users}, indent=2, sort_keys=True).encode()
        write_durably(self.path, data)  # 0600 in 0700 folders
        self._stamp = None

    def names(self) -> list[User]:
        with self._lock:
            return [_user(name, row) for name, row in sorted(self._load().items())]

    def get(self, name: str) -> User | None:
        with self._lock:
            row = self._load().get(name)
        return _user(name, row) if row else None

    def verify(self, name: str, password: str) -> User | None:
        """The user, if ``password`` is theirs; a hash made under older parameters is renewed.
        The hash is checked outside the store's lock, which every page's session check takes:
        a flood of logins must not make the console wait. :data:`HASHES_AT_ONCE` bounds what
        such a flood holds in memory instead."""
        with self._lock:
            row = self._load().get(name)
        with self._hashing:
            if row is None:
                _hasher.verify(password, _dummy())
                return None
            ok, renewed = _hasher.verify_and_update(password, row["hash"])
        if not ok:
            return None
        if renewed:
            with self._lock:
                users = dict(self._load())
                if users.get(name, {}).get("hash") == row["hash"]:  # not changed meanwhile
                    users[name] = {**row, "hash": renewed}
                    self._save(users)
        return _user(name, row)

    def put(self, name: str, *, role: str | None = None, password: str | None = None) -> User:
        """Add a user (role and password required) or change one's role and/or password."""
        check_name(name)
        hashed = None
        if password is not None:
            with self._hashing:  # not under the lock, as in verify
                hashed = _hasher.hash(check_password(password))
        with self._lock:
            users = dict(self._load())
            row = dict(users.get(name) or {})
            if not row and (role is None or password is None):
                raise UserError("a new user needs a role and a password")
            if role is not None:
                row["role"] = check_role(role)
            if hashed is not None:
                row["hash"] = hashed
            row["generation"] = int(row.get("generation", 0)) + 1
            users[name] = row
            self._save(users)
        return _user(name, row)

    def remove(self, name: str) -> bool:
        with self._lock:
            users = dict(self._load())
            if users.pop(name, None) is None:
                return False
            self._save(users)
        return True


def _user(name: str, row: dict) -> User:
    return User(name=name, role=row["role"], generation=int(row.get("generation", 0)))
