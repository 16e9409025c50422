"""Login sessions shared by the console's worker processes (BJSV_CONSOLE_WORKERS): two stores on one file
stand for two workers."""

from __future__ import annotations

import stat
from pathlib import Path

import jwt

from services.console.identity import Credentials, principal_from_token
from services.console.sessions import SessionStore


def _credentials() -> Credentials:
    token = jwt.encode({"sub": "official", "name": "王科长", "org": "agencies/08", "roles": ["district-agency"]},
                       "the-console-never-verifies-this-signature", algorithm="HS256")  # fmt: skip
    return Credentials(principal_from_token(token), token)


def test_a_login_on_one_worker_is_seen_by_another_and_logout_ends_it_on_both(tmp_path: Path) -> None:
    path = tmp_path / "console-sessions.db"
    one, two = SessionStore(60, path), SessionStore(60, path)
    anonymous = one.new()
    logged_in = one.rotate(anonymous, _credentials())
    assert two.get(anonymous.id) is None  # a fresh id at login: the pre-login id is gone everywhere
    seen = two.get(logged_in.id)
    assert seen is not None and seen.csrf == logged_in.csrf
    assert seen.credentials == logged_in.credentials and seen.credentials.principal.org == "agencies/08"
    two.drop(logged_in.id)  # logout on the other worker
    assert one.get(logged_in.id) is None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # access tokens: readable by the console's user only


def test_a_login_in_flight_is_kept_for_the_worker_that_gets_the_callback(tmp_path: Path) -> None:
    path = tmp_path / "console-sessions.db"
    one, two = SessionStore(60, path), SessionStore(60, path)
    s = one.new()
    s.pending_login = {"state": "st", "verifier": "v", "redirect_uri": "https://127.0.0.1/login/callback"}
    one.save(s)
    assert two.get(s.id).pending_login["state"] == "st"


def test_activity_on_any_worker_keeps_a_session_alive(tmp_path: Path) -> None:
    now = [1000.0]
    path = tmp_path / "console-sessions.db"
    one, two = SessionStore(60, path, clock=lambda: now[0]), SessionStore(60, path, clock=lambda: now[0])
    s = one.new()
    now[0] += 50
    assert two.get(s.id) is not None
    now[0] += 50  # 100 s after login, 50 s after the last request
    assert one.get(s.id) is not None
    now[0] += 61
    assert two.get(s.id) is None
