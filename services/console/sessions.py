"""Server-side login sessions: the browser holds only a random id (HttpOnly, SameSite=Lax, Secure over
HTTPS); the access token stays here. Each session has its own CSRF token, checked on every form post, and
ends after BJSV_CONSOLE_IDLE_TIMEOUT seconds without a request.

Kept in this process's memory: a console restart logs everyone out, and several console replicas need
sticky sessions at the balancer (README, console).
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from services.console.identity import Credentials

COOKIE = "bjsv_console"


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
    def __init__(self, idle_timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.idle_timeout = idle_timeout
        self.clock = clock
        self._sessions: dict[str, Session] = {}

    def new(self) -> Session:
        self._expire()
        s = Session(id=secrets.token_urlsafe(32), csrf=secrets.token_urlsafe(32), last_seen=self.clock())
        self._sessions[s.id] = s
        return s

    def get(self, session_id: str | None) -> Session | None:
        s = self._sessions.get(session_id or "")
        if s is None:
            return None
        now = self.clock()
        if now - s.last_seen > self.idle_timeout:
            del self._sessions[s.id]
            return None
        s.last_seen = now
        return s

    def rotate(self, old: Session, credentials: Credentials) -> Session:
        """A fresh id and CSRF token at login (no session fixation)."""
        self.drop(old.id)
        s = self.new()
        s.credentials = credentials
        return s

    def drop(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def _expire(self) -> None:
        now = self.clock()
        for sid in [k for k, s in self._sessions.items() if now - s.last_seen > self.idle_timeout]:
            del self._sessions[sid]
