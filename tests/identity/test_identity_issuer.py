"""The embedded OIDC issuer as a real process (services/identity), driven like an operator drives it
(`supervisionctl auth …`) and checked like a service checks it (common.auth.tokens.Verifier)."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import socket
import ssl
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import jwt
import pytest
from cryptography import x509

from common import pki
from common.auth.config import AuthSettings
from common.auth.credentials import request_token
from common.auth.tokens import Unauthenticated, Verifier
from common.config import Settings
from supervisionctl.natsd import free_port
from tests.auth_support import IssuerProcess

CTL = str(Path(sys.executable).parent / "supervisionctl")


@pytest.fixture(scope="module")
def issuer(tmp_path_factory):
    proc = IssuerProcess(tmp_path_factory.mktemp("idp"), free_port()).start()
    yield proc
    proc.stop()


def settings(issuer: IssuerProcess) -> AuthSettings:
    return issuer.settings()


def ctl(issuer: IssuerProcess, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", **issuer.env}
    return subprocess.run([CTL, "auth", *args], env=env, input=stdin, capture_output=True, text=True, timeout=60)


def token_request(issuer: IssuerProcess, **form: str) -> dict:
    return request_token(settings(issuer), form)


def test_local_credentials_and_keys_are_private_files(issuer):
    folder = issuer.data_dir / "identity"
    secrets = [folder / "admin.json", folder / "accounts.json", *folder.glob("clients/*.json"), *folder.glob("keys/*")]
    for path in secrets:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert {p.stem for p in folder.glob("clients/*.json")} == {"registry", "rules", "documents", "notify"}


def test_a_person_logs_in_with_the_password_grant_and_the_hash_is_argon2id(issuer):
    created = ctl(issuer, "create", "li.si", "--org", "agencies/08", "--role", "district-agency", "--secret-stdin",
                  stdin="correct horse battery staple\n")  # fmt: skip
    assert created.returncode == 0, created.stderr
    stored = json.loads((issuer.data_dir / "identity" / "accounts.json").read_text())
    (row,) = [a for a in stored if a["name"] == "li.si"]
    assert row["secret_hash"].startswith("$argon2id$") and "correct horse" not in row["secret_hash"]
    got = token_request(issuer, grant_type="password", username="li.si", password="correct horse battery staple")
    claims = jwt.decode(got["access_token"], options={"verify_signature": False})
    assert (claims["sub"], claims["org"], claims["roles"]) == ("li.si", "agencies/08", ["district-agency"])
    with pytest.raises(urllib.error.HTTPError) as e:
        token_request(issuer, grant_type="password", username="li.si", password="wrong")
    assert e.value.code == 400 and json.loads(e.value.read())["error"] == "invalid_grant"


def test_a_disabled_account_gets_no_more_tokens(issuer):
    assert ctl(issuer, "create", "wang.wu", "--org", "agencies/05", "--role", "district-agency", "--secret-stdin",
               stdin="s3cret-pass\n").returncode == 0  # fmt: skip
    assert ctl(issuer, "disable", "wang.wu").returncode == 0
    with pytest.raises(urllib.error.HTTPError):
        token_request(issuer, grant_type="password", username="wang.wu", password="s3cret-pass")
    listed = json.loads(ctl(issuer, "list", "--json").stdout)
    assert [a["disabled"] for a in listed if a["name"] == "wang.wu"] == [True]
    assert all("secret_hash" not in a for a in listed)


def test_a_calling_system_uses_client_credentials(issuer):
    out = ctl(issuer, "create", "exam-system", "--kind", "client", "--org", "institutions/1100081001",
              "--role", "institution")  # fmt: skip
    assert out.returncode == 0, out.stderr
    secret = out.stdout.strip().rsplit("：", 1)[1]
    got = token_request(issuer, grant_type="client_credentials", client_id="exam-system", client_secret=secret)
    claims = jwt.decode(got["access_token"], options={"verify_signature": False})
    assert (claims["org"], claims["roles"]) == ("institutions/1100081001", ["institution"])
    # only the local admin may name another organisation: this client still gets its own
    again = jwt.decode(
        token_request(issuer, grant_type="client_credentials", client_id="exam-system", client_secret=secret,
                      org="agencies/A", role="city-centre")["access_token"], options={"verify_signature": False},
    )  # fmt: skip
    assert again["org"] == "institutions/1100081001"


async def test_a_rotated_key_is_picked_up_and_the_old_one_still_verifies(issuer):
    verifier = Verifier(settings(issuer))
    before = ctl(issuer, "token", "--org", "agencies/A", "--role", "city-centre").stdout.strip()
    assert (await verifier.verify(f"Bearer {before}", time.time())).org == "agencies/A"
    fetched = time.monotonic()
    rotated = ctl(issuer, "rotate-keys")
    assert rotated.returncode == 0, rotated.stderr
    after = ctl(issuer, "token", "--org", "agencies/08", "--role", "district-agency").stdout.strip()
    assert jwt.get_unverified_header(after)["kid"] != jwt.get_unverified_header(before)["kid"]
    # the rest of the refetch cooldown after the first fetch (5 s, common.auth.tokens): rotating took some of it
    await asyncio.sleep(fetched + 5.5 - time.monotonic())
    assert (await verifier.verify(f"Bearer {after}", time.time())).org == "agencies/08"  # unknown kid → refetch
    fresh = Verifier(settings(issuer))  # a service started after the rotation
    assert (await fresh.verify(f"Bearer {before}", time.time())).org == "agencies/A"  # old key still published


async def test_a_token_for_another_audience_is_refused(issuer):
    token = ctl(issuer, "token", "--org", "agencies/A", "--role", "city-centre").stdout.strip()
    other = Verifier(settings(issuer).model_copy(update={"oidc_audience": "another-system"}))
    with pytest.raises(Unauthenticated) as e:
        await other.verify(f"Bearer {token}", time.time())
    assert e.value.reason == "TOKEN_AUDIENCE"


def test_token_command_is_refused_when_an_external_issuer_is_configured(issuer):
    env = {"PATH": "/usr/bin:/bin", **issuer.env, "BJSV_OIDC_ISSUER": "https://sso.example.gov.cn/realms/bjsv"}
    out = subprocess.run([CTL, "auth", "token", "--org", "agencies/A", "--role", "city-centre"], env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 2 and "外部身份认证服务" in out.stderr and not out.stdout


def test_doctor_flags_a_readable_admin_credential_and_checks_an_external_issuers_clock(issuer, monkeypatch):
    from supervisionctl.doctor import run_checks

    for key, value in issuer.env.items():
        monkeypatch.setenv(key, value)
    admin = issuer.data_dir / "identity" / "admin.json"
    admin.chmod(0o644)
    try:
        (check,) = [c for c in run_checks(Settings()) if c.name == "本地管理员凭据"]
        assert not check.ok and check.fix == f"chmod 600 {admin}"
    finally:
        admin.chmod(0o600)
    monkeypatch.setenv("BJSV_OIDC_ISSUER", settings(issuer).issuer)  # as if it were an external provider
    monkeypatch.setenv("BJSV_OIDC_CA_FILE", str(issuer.pki_dir / "ca.crt"))  # its HTTPS from a private CA
    checks = {c.name: c for c in run_checks(Settings())}
    assert checks["身份认证服务"].ok and checks["时钟偏差"].ok, checks


def presented_certificate(issuer: IssuerProcess) -> x509.Certificate:
    trusted = ssl.create_default_context(cafile=str(issuer.pki_dir / "ca.crt"))
    with (
        socket.create_connection(("127.0.0.1", issuer.port), timeout=5) as raw,
        trusted.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def test_a_rotated_issuer_certificate_is_presented_without_a_restart(issuer):
    before = presented_certificate(issuer)
    rotated = x509.load_pem_x509_certificate(pki.issue(issuer.pki_dir, "identity").read_bytes())  # certs rotate
    assert rotated.serial_number != before.serial_number
    assert presented_certificate(issuer).serial_number == rotated.serial_number
    assert issuer.proc is not None and issuer.proc.poll() is None


def test_the_issuer_serves_https_only_with_a_certificate_from_the_stack_ca(issuer):
    with pytest.raises((OSError, http.client.HTTPException)):  # a plain-HTTP client gets no answer at all
        urllib.request.urlopen(f"http://127.0.0.1:{issuer.port}/healthz", timeout=5)
    ca = x509.load_pem_x509_certificate((issuer.pki_dir / "ca.crt").read_bytes())
    presented = presented_certificate(issuer)
    presented.verify_directly_issued_by(ca)
    assert presented.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "identity"
    with pytest.raises(urllib.error.URLError) as untrusted:  # not trusted through the system store alone
        urllib.request.urlopen(f"https://127.0.0.1:{issuer.port}/healthz", timeout=5)
    assert isinstance(untrusted.value.reason, ssl.SSLCertVerificationError)


async def test_token_checks_fetch_the_keys_over_verified_https(issuer, tmp_path):
    token = ctl(issuer, "token", "--org", "agencies/08", "--role", "district-agency").stdout.strip()
    assert settings(issuer).issuer == f"https://127.0.0.1:{issuer.port}"
    assert (await Verifier(settings(issuer)).verify(f"Bearer {token}", time.time())).org == "agencies/08"
    pki.ensure(tmp_path / "other", components=())  # a verifier trusting another CA does not get the keys
    elsewhere = Verifier(settings(issuer).model_copy(update={"pki_dir": tmp_path / "other"}))
    with pytest.raises(Unauthenticated) as e:
        await elsewhere.verify(f"Bearer {token}", time.time())
    assert e.value.reason == "JWKS_UNREACHABLE"


def test_a_plaintext_issuer_only_under_the_development_setting_and_it_warns(tmp_path):
    os.environ["BJSV_TLS"] = "off"
    try:
        plain = IssuerProcess(tmp_path, free_port()).start()
    finally:
        del os.environ["BJSV_TLS"]
    try:
        assert plain.settings().model_copy(update={"tls": "off"}).issuer.startswith("http://")
        log = (tmp_path / "identity.log").read_text()
        assert "BJSV_TLS=off" in log and "PLAINTEXT" in log
    finally:
        plain.stop()
