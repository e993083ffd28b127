"""Dashboard sessions, in the model JupyterLab uses: a token URL, then an HttpOnly cookie.

Operators come from a small **user file**: each has a name, a role and a login token. The
station prints each operator's token URL at start (``…/?token=…``). Opening it trades the token
for a **session**: a random session id in an ``HttpOnly`` (no script can read it), ``SameSite=
Strict`` cookie, and a redirect that takes the token out of the address bar. From then on every
API request and the WebSocket must carry the session (or, for scripts and labs, the token as
``Authorization: Bearer …``); without one they are refused before anything is read or upgraded.

Roles: a ``viewer`` may look; a ``nurse`` may also acknowledge and silence alarms. An
acknowledgement records the session's operator, never a name typed into the page.

The cookie alone does not stop a page from another origin: browsers treat every port of
127.0.0.1 as the *same site*, so SameSite does not keep the cookie from a page on another port,
and a WebSocket is not subject to CORS. So the station also checks the ``Origin`` header of the
WebSocket handshake and of API requests against its own origin and a configured allow-list
(:func:`origin_allowed`): the defence against cross-site WebSocket hijacking (CSWSH), the hole
of CVE-2024-28179 in jupyter-server-proxy.

The user file (JSON)::

    {"format": "vitalsim-users", "version": 1,
     "users": [{"name": "amy", "role": "nurse", "token": "<hex>"}, ...]}
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

FORMAT = "vitalsim-users"
VERSION = 1
ROLES = ("viewer", "nurse")
COOKIE = "vitalsim_session"
#: what each role may do, beyond looking
MAY_ACT = {"viewer": False, "nurse": True}


class UserFileError(ValueError):
    """The user file is missing, not JSON, or not in the format above; the message says where."""


@dataclass(frozen=True)
class Operator:
    name: str
    role: str
    token: str = ""

    def __repr__(self) -> str:  # the token never goes into a log line
        return f"Operator({self.name!r}, {self.role!r})"

    @property
    def may_act(self) -> bool:
        """May acknowledge and silence alarms (a nurse), not only look (a viewer)."""
        return MAY_ACT[self.role]


def default_users() -> list[Operator]:
    """The demo's operators: one nurse, one viewer, each with a fresh token."""
    return [Operator("nurse", "nurse", secrets.token_hex(24)),
            Operator("viewer", "viewer", secrets.token_hex(24))]


def load_users(path: str | Path) -> list[Operator]:
    """The operators of a user file; :class:`UserFileError` names what is wrong."""
    try:
        obj = json.loads(Path(path).read_text())
    except OSError as exc:
        raise UserFileError(f"cannot read user file {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UserFileError(f"{path}: not JSON: {exc}") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT or obj.get("version") != VERSION:
        raise UserFileError(f'{path}: not a user file (expected "format": "{FORMAT}", '
                            f'"version": {VERSION})')
    users = obj.get("users")
    if not isinstance(users, list) or not users:
        raise UserFileError(f'{path}: "users" must be a non-empty list')
    out: list[Operator] = []
    for i, u in enumerate(users):
        if not isinstance(u, dict) or set(u) != {"name", "role", "token"}:
            raise UserFileError(f"{path}: user {i}: expected exactly name, role, token")
        name, role, token = u["name"], u["role"], u["token"]
        if not isinstance(name, str) or not 0 < len(name) <= 64 or not name.isprintable():
            raise UserFileError(f"{path}: user {i}: name must be 1..64 printable characters")
        if role not in ROLES:
            raise UserFileError(f"{path}: user {name}: role {role!r} is not one of {ROLES}")
        if not isinstance(token, str) or len(token) < 32 or not token.isalnum():
            raise UserFileError(f"{path}: user {name}: token must be 32 or more letters and "
                                "digits (e.g. secrets.token_hex(24))")
        out.append(Operator(name, role, token))
    names = [u.name for u in out]
    if len(set(names)) != len(names):
        raise UserFileError(f"{path}: user names must be unique, got {names}")
    return out


def save_users(users: list[Operator], path: str | Path) -> None:
    """Write a user file readable by its owner only (0600)."""
    obj = {"format": FORMAT, "version": VERSION,
           "users": [{"name": u.name, "role": u.role, "token": u.token} for u in users]}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


class Sessions:
    """Tokens in, sessions out; no I/O, the time passed in. At most ``max_sessions`` are kept
    (the oldest login goes first), so logging in again and again cannot grow the station's
    memory; a session ends ``max_age`` seconds after its login (a shift), so a cookie copied
    from a browser does not act for ever."""

    def __init__(self, users: list[Operator], *, max_sessions: int = 1024,
                 max_age: float = 12 * 3600) -> None:
        self.users = list(users)
        self._sessions: OrderedDict[str, tuple[Operator, float]] = OrderedDict()
        self.max_sessions = max_sessions
        self.max_age = max_age
        self.refused: dict[str, int] = {}  # reason -> count, for /api/stats

    def by_token(self, token: str) -> Operator | None:
        """The operator whose login token this is (compared in constant time)."""
        found = None
        for user in self.users:
            if hmac.compare_digest(user.token.encode(), token.encode("utf-8", "replace")):
                found = user
        return found

    def login(self, token: str, now: float) -> str | None:
        """A new session id for the token's operator, or None for a token nobody has."""
        user = self.by_token(token)
        if user is None:
            return None
        session = secrets.token_urlsafe(32)
        self._sessions[session] = (user, now + self.max_age)
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return session

    def operator(self, session: str | None, now: float) -> Operator | None:
        """The session's operator, or None: no such session, or it has ended."""
        found = self._sessions.get(session) if session else None
        if found is None:
            return None
        user, ends = found
        if now >= ends:
            del self._sessions[session]
            return None
        return user

    def refuse(self, reason: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1


def origin_allowed(origin: str, host: str, allowed: frozenset[str] | tuple[str, ...]) -> bool:
    """May a browser page from ``origin`` talk to this station? Yes when the origin is the
    station's own (its host and port are the request's ``Host``) or in ``allowed`` (exact
    ``scheme://host:port`` strings: a hub's origin, say, when the dashboard is proxied)."""
    if origin in allowed:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()
