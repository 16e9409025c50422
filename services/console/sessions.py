"""Server-side login sessions: the browser holds only a random id (HttpOnly, SameSite=Lax, Secure over
HTTPS); the access token stays on the server. Each session has its own CSRF token, checked on every form
post, and ends after BJSV_CONSOLE_IDLE_TIMEOUT seconds without a request.

Kept in one SQLite file (`<data_dir>/console-sessions.db`, readable by the console's user only) so that the
console's worker processes (BJSV_CONSOLE_WORKERS) share them: a request may land on any worker, and logout
ends the session for all of them. A console restart keeps users logged in until their idle timeout; several
console hosts still need sticky sessions at the balancer (README, console).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from services.console.identity import Credentials, principal_from_token

COOKIE = "bjsv_console"
# last_seen is written at most this often per session: one write a second instead of one per request, far
# below any idle timeout.
_TOUCH_EVERY = 1.0
_SCHEMA = """CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, csrf TEXT NOT NULL, last_seen REAL NOT NULL,
    access_token TEXT NOT NULL DEFAULT '', pending_login TEXT NOT NULL DEFAULT '{}')"""


@dataclass
class Session:
    id: str
    csrf: str
    last_seen: float
    credentials: Credentials | None = None
    # Authorization code + PKCE in flight: state and code verifier until the issuer redirects back.
    pending_login: dict[str, str] = field(default_factory=dict)

    def csrf_ok(self, token: str) -> bool:
        return hmac.compare_digest(self.csrf.encode(), (token or "").encode())


class SessionStore:
    """`path` None keeps the sessions in this process only (one worker, tests)."""

    def __init__(self, idle_timeout: float, path: Path | None = None, clock: Callable[[], float] = time.time) -> None:
        self.idle_timeout = idle_timeout
        self.clock = clock  # wall-clock seconds: the workers are separate processes
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600, exist_ok=True)  # access tokens: the console's user only
        self._db = sqlite3.connect(str(path or ":memory:"), timeout=5.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # a lost session after a power cut means logging in again
        self._db.execute(_SCHEMA)

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def new(self) -> Session:
        now = self.clock()
        s = Session(id=secrets.token_urlsafe(32), csrf=secrets.token_urlsafe(32), last_seen=now)
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE last_seen < ?", (now - self.idle_timeout,))
            db.execute("INSERT INTO sessions (id, csrf, last_seen) VALUES (?, ?, ?)", (s.id, s.csrf, now))
        return s

    def get(self, session_id: str | None) -> Session | None:
        row = self._db.execute(
            "SELECT csrf, last_seen, access_token, pending_login FROM sessions WHERE id = ?", (session_id or "",)
        ).fetchone()
        if row is None:
            return None
        csrf, last_seen, token, pending = row
        now = self.clock()
        if now - last_seen > self.idle_timeout:
            self.drop(str(session_id))
            return None
        if now - last_seen >= _TOUCH_EVERY:
            self._db.execute("UPDATE sessions SET last_seen = ? WHERE id = ?", (now, session_id))
        creds = Credentials(principal_from_token(token), token) if token else None
        return Session(str(session_id), csrf, now, creds, json.loads(pending))

    def save(self, session: Session) -> None:
        """Keep what a handler changed in the session (the login in flight)."""
        self._db.execute(
            "UPDATE sessions SET pending_login = ? WHERE id = ?", (json.dumps(session.pending_login), session.id)
        )

    def rotate(self, old: Session, credentials: Credentials) -> Session:
        """A fresh id and CSRF token at login (no session fixation)."""
        self.drop(old.id)
        s = self.new()
        s.credentials = credentials
        self._db.execute("UPDATE sessions SET access_token = ? WHERE id = ?", (credentials.access_token, s.id))
        return s

    def drop(self, session_id: str) -> None:
        self._db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
