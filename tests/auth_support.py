"""Tokens for the tests (issue #12): every call carries a bearer token from the test session's issuer.

The session fixture `issuer` (tests/conftest.py) runs the embedded issuer (`python -m services.identity`)
once and exports BJSV_IDENTITY_PORT / BJSV_IDENTITY_DIR, so services started by any test (in-process or
as subprocesses, the `stack` included) verify against it. Tests ask for a token with `token(org, *roles)`
(minted with the issuer's local admin credential, as `supervisionctl auth token` does).
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from pathlib import Path

import grpc

from common import clients, pki
from common.auth import issuer_tls
from common.auth.config import AuthSettings
from common.auth.credentials import admin_token

ROOT = Path(__file__).resolve().parents[1]
# The default caller of tests that are not about authorisation: the city centre's official who also holds
# the operator role (a token may carry several roles; each RPC admits it if one of them is granted).
DEFAULT = ("agencies/A", "city-centre", "operator")
CITY = ("agencies/A", "city-centre")
OPERATOR = ("operators/ops", "operator")


@functools.cache
def _cached(org: str, roles: tuple[str, ...], subject: str, hour: int) -> str:
    return admin_token(AuthSettings(), org, list(roles), subject)


def token(org: str = DEFAULT[0], *roles: str, subject: str = "") -> str:
    """A bearer token for org/roles (default: DEFAULT), reused within the token's lifetime."""
    roles = roles or (DEFAULT[1:] if org == DEFAULT[0] else ())
    return _cached(org, tuple(roles), subject, int(time.time() // 600))  # tokens live 900 s


def bearer(org: str = DEFAULT[0], *roles: str, subject: str = "") -> tuple[tuple[str, str], ...]:
    """gRPC metadata carrying that token."""
    return (("authorization", f"Bearer {token(org, *roles, subject=subject)}"),)


def channel(target: str, who: tuple[str, ...] = DEFAULT) -> grpc.Channel:
    return clients.sync_channel(target, token=token(*who))


def aio_channel(target: str, who: tuple[str, ...] = DEFAULT) -> grpc.aio.Channel:
    return clients.channel(target, token=token(*who))


def issuer_env() -> dict[str, str]:
    """The session issuer's settings, for a CLI subprocess started with a minimal environment."""
    return {k: v for k, v in os.environ.items() if k.startswith("BJSV_IDENTITY_")}


def plaintext_issuer_env() -> dict[str, str]:
    """For a BJSV_TLS=off process (a benchmark's plaintext comparison): the session issuer still serves
    HTTPS, so it is named as an external issuer would be (URL and CA); a plaintext process would otherwise
    look for a plain-HTTP embedded issuer."""
    auth = AuthSettings()
    return {"BJSV_TLS": "off", "BJSV_OIDC_ISSUER": auth.issuer, "BJSV_OIDC_CA_FILE": str(pki.ca_path(auth))}


class IssuerProcess:
    """The embedded issuer as a subprocess (exactly what `supervisionctl up` starts)."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir, self.port = data_dir, port
        # HTTPS with the `identity` certificate of the session's CA (tests/conftest.py test_pki), or of its own
        self.pki_dir = Path(os.environ.get("BJSV_PKI_DIR") or data_dir / "pki")
        self.proc: subprocess.Popen | None = None

    def settings(self) -> AuthSettings:
        """What a client of this issuer uses: its URL (https://127.0.0.1:<port>) and the CA it is trusted with."""
        return AuthSettings(
            data_dir=self.data_dir,
            bind_host="127.0.0.1",
            identity_port=self.port,
            identity_dir=self.data_dir / "identity",
            pki_dir=self.pki_dir,
        )

    @property
    def env(self) -> dict[str, str]:
        """What services and clients of this test run need: the issuer, test-clock RPCs on, and no public-call
        rate limit (load tests and benchmarks call VerifyBadge from one address; the limit has its own test)."""
        return {
            "BJSV_IDENTITY_PORT": str(self.port),
            "BJSV_IDENTITY_DIR": str(self.data_dir / "identity"),
            "BJSV_PKI_DIR": str(self.pki_dir),
            "BJSV_TEST_CLOCK": "1",
            "BJSV_AUTHZ_PUBLIC_RATE": "1000000",
        }

    def start(self, timeout: float = 30.0) -> IssuerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pki.ensure(self.pki_dir)  # as `supervisionctl up` does: the CA and the issuer's certificate
        env = {**os.environ, "BJSV_DATA_DIR": str(self.data_dir), "BJSV_BIND_HOST": "127.0.0.1", **self.env}
        env.pop("BJSV_OIDC_ISSUER", None)
        with open(self.data_dir / "identity.log", "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.identity"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"identity exited with {self.proc.returncode}")
            try:
                with issuer_tls.urlopen(self.settings(), f"{self.settings().issuer}/healthz", 0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("identity not serving")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def ensure_issuer() -> None:
    """For scripts run outside pytest (bench/): start an issuer for this process unless one is configured."""
    if os.environ.get("BJSV_IDENTITY_PORT") and os.environ.get("BJSV_IDENTITY_DIR"):
        return
    import atexit
    import tempfile

    from supervisionctl.natsd import free_port

    folder = Path(tempfile.mkdtemp(prefix="bjsv-issuer-"))
    proc = IssuerProcess(folder, free_port()).start()
    atexit.register(proc.stop)
    os.environ.update(proc.env)
