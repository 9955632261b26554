"""Accounts: who may log in, with which role, and their API tokens, kept in `<data dir>/users.json` (mode 0600).

Passwords are stored as Werkzeug scrypt hashes; an API token is shown once when made and stored as its SHA-256
(a token is 256 random bits, so a fast hash is enough and checking one costs nothing). The running app reads the
file again whenever it changes, so `python app.py users ...` takes effect without a restart.
"""

import hashlib
import hmac
import json
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

from maskdetector.errors import UserError
from maskdetector.files import private_dir, write_private

USERS_FILENAME = "users.json"
ROLES = ("admin", "viewer")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
MIN_PASSWORD_LENGTH = 8
TOKEN_PREFIX = "mdt_"
HASH_METHOD = "scrypt"
ADD_HINT = "add one with `python app.py users add NAME --role admin`"
# Checked against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not a password", method=HASH_METHOD)


class AccountsUnreadable(UserError):
    """users.json exists but cannot be read or parsed: nobody may log in until it is fixed."""


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    stamp: str  # changes with the password: a session made before a change is no longer valid

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class AccountStore:
    """users.json of one data folder: {"users": {name: {"role", "password", "token", "created"}}}."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / USERS_FILENAME
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._users: dict[str, dict[str, str]] = {}

    def users(self) -> dict[str, dict[str, str]]:
        """The accounts as stored, read again if the file changed; AccountsUnreadable if it is damaged."""
        with self._lock:
            try:
                info = self.path.stat()
            except FileNotFoundError:
                self._seen, self._users = None, {}
                return {}
            except OSError as exc:
                raise AccountsUnreadable(f"cannot read {self.path}: {exc.strerror or exc}") from None
            seen = (info.st_ino, info.st_mtime_ns, info.st_size)
            if seen != self._seen:
                self._users = self._read()
                self._seen = seen
            return dict(self._users)

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            users = json.loads(self.path.read_text(encoding="utf-8"))["users"]
            if not all(isinstance(user, dict) and user.get("role") in ROLES for user in users.values()):
                raise ValueError("an account without a valid role")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise AccountsUnreadable(f"the accounts file {self.path} is damaged ({exc}): fix or remove it") from None
        return users

    def exists(self) -> bool:
        return bool(self.users())

    def account(self, name: str) -> Account | None:
        user = self.users().get(name)
        if user is None:
            return None
        return Account(name, user["role"], hashlib.sha256(user["password"].encode()).hexdigest()[:16])

    def check_password(self, name: str, password: str) -> Account | None:
        """The account if `password` is its password; None otherwise (in the same time for an unknown name)."""
        user = self.users().get(name)
        if not check_password_hash(user["password"] if user else _DUMMY_HASH, password) or user is None:
            return None
        return self.account(name)

    def from_token(self, token: str) -> Account | None:
        digest = _token_digest(token)
        for name, user in self.users().items():
            if user.get("token") and hmac.compare_digest(user["token"], digest):
                return self.account(name)
        return None

    def add(self, name: str, role: str, password: str) -> None:
        if not NAME_PATTERN.fullmatch(name):
            raise UserError(f"account name {name!r}: use 1-64 letters, digits, '_', '.', '@' or '-'")
        if role not in ROLES:
            raise UserError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        users = self.users()
        if name in users:
            raise UserError(f"account {name!r} exists: `users password {name}` changes its password")
        users[name] = {"role": role, "created": datetime.now(UTC).isoformat(timespec="seconds")}
        self._save(users, name, password)

    def set_password(self, name: str, password: str) -> None:
        self._save(self._existing(name), name, password)

    def remove(self, name: str) -> None:
        users = self._existing(name)
        del users[name]
        self._save(users)

    def new_token(self, name: str) -> str:
        """A new API token for `name`, replacing its old one; only its hash is stored."""
        users = self._existing(name)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        users[name] = {**users[name], "token": _token_digest(token)}
        self._save(users)
        return token

    def _existing(self, name: str) -> dict[str, dict[str, str]]:
        users = self.users()
        if name not in users:
            raise UserError(f"no account named {name!r} (see `users list`)")
        return users

    def _save(self, users: dict[str, dict[str, str]], name: str = "", password: str | None = None) -> None:
        if password is not None:
            if len(password) < MIN_PASSWORD_LENGTH:
                raise UserError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
            users[name] = {**users[name], "password": generate_password_hash(password, method=HASH_METHOD)}
        try:
            private_dir(self.path.parent)
            write_private(self.path, (json.dumps({"users": users}, indent=2) + "\n").encode("utf-8"))
        except OSError as exc:
            raise UserError(f"cannot write {self.path}: {exc.strerror or exc}") from None
