"""The stack's own certificate authority and one certificate per component, and the TLS credentials built
from them (gRPC servers and channels, NATS connections).

Layout under the PKI folder (`BJSV_PKI_DIR`, default `<data_dir>/pki`): `ca.crt` + `ca.key`, and
`<component>.crt` + `<component>.key` for every component; keys are 0600. Every certificate is both a server
and a client certificate (mutual TLS), with the component as CN, so a peer is identified by its certificate.
Certificates are written atomically (temporary file + rename): a server reloads them on the next handshake
(`grpc.dynamic_ssl_server_credentials`), which is how `supervisionctl certs rotate` avoids downtime.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import logging
import os
import ssl
import time
from collections.abc import Iterable
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from common.config import Settings
from common.db import StartupError

log = logging.getLogger(__name__)

COMPONENTS = ("registry", "rules", "documents", "notify", "identity", "console", "nats", "supervisionctl")
CA_DAYS = 3650
CERT_DAYS = 397  # the CA/Browser Forum ceiling; rotate yearly with `supervisionctl certs rotate`
WARN_DAYS = 30  # `doctor` warns this long before a certificate expires
ORGANISATION = "bjsv"

# The component whose certificate this process presents on outgoing calls; `common.server.serve` sets it
# to the service name, every other process (supervisionctl, tests, integrator scripts) is `supervisionctl`.
_identity = "supervisionctl"


def set_identity(component: str) -> None:
    global _identity
    _identity = component


def root(settings: Settings) -> Path:
    return (settings.pki_dir or settings.data_dir / "pki").resolve()


def ca_path(settings: Settings) -> Path:
    return root(settings) / "ca.crt"


def cert_path(folder: Path, component: str) -> Path:
    return folder / f"{component}.crt"


def key_path(folder: Path, component: str) -> Path:
    return folder / f"{component}.key"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write(path: Path, data: bytes, *, secret: bool) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.replace(path)  # atomic: a server reloading mid-rotation sees the old or the new file, never half


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION), x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )


def _create_ca(folder: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("bjsv local CA")
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # keyCertSign + cRLSign only
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(key_path(folder, "ca"), _key_pem(key), secret=True)
    _write(cert_path(folder, "ca"), cert.public_bytes(serialization.Encoding.PEM), secret=False)


def _sans(component: str, hostnames: Iterable[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(["localhost", component, "127.0.0.1", *hostnames]):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def issue(
    folder: Path,
    component: str,
    *,
    hostnames: Iterable[str] = (),
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> Path:
    """(Re)issue `component`'s certificate and key from the CA in `folder`; returns the certificate path."""
    ca_key = serialization.load_pem_private_key(key_path(folder, "ca").read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):  # _create_ca makes a P-256 key; anything else is foreign
        raise ValueError(f"{key_path(folder, 'ca')}: not an EC private key")
    ca_cert = x509.load_pem_x509_certificate(cert_path(folder, "ca").read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    start = not_before or _now() - dt.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(component))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(not_after or start + dt.timedelta(days=CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_sans(component, hostnames), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    # Key first: a reader that sees the new certificate must find its key (a handshake reloads both).
    _write(key_path(folder, component), _key_pem(key), secret=True)
    _write(cert_path(folder, component), cert.public_bytes(serialization.Encoding.PEM), secret=False)
    return cert_path(folder, component)


def ensure(folder: Path, *, hostnames: Iterable[str] = (), components: Iterable[str] = COMPONENTS) -> list[str]:
    """Create the CA and every missing component certificate (first `up`); returns the components issued.
    A file lock makes concurrent starts (several services, several tests) create one CA, not several."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not cert_path(folder, "ca").exists():
            _create_ca(folder)
        missing = [c for c in components if not cert_path(folder, c).exists()]
        for component in missing:
            issue(folder, component, hostnames=hostnames)
    return missing


def rotate(folder: Path, *, hostnames: Iterable[str] = (), components: Iterable[str] = COMPONENTS) -> list[str]:
    """Re-issue every component certificate from the same CA (new keys); running servers pick them up."""
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = [c for c in components if cert_path(folder, c).exists()]
        for component in done:
            issue(folder, component, hostnames=hostnames)
    return done


def not_after(path: Path) -> dt.datetime:
    return x509.load_pem_x509_certificate(path.read_bytes()).not_valid_after_utc


def usable(settings: Settings, component: str) -> tuple[Path, Path, Path]:
    """CA, certificate and key of `component`, or a StartupError with a one-line fix (missing or expired)."""
    folder = root(settings)
    paths = (cert_path(folder, "ca"), cert_path(folder, component), key_path(folder, component))
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise StartupError(
            f"TLS is on but {', '.join(missing)} is missing. Fix: run `supervisionctl certs init` "
            f"(or `supervisionctl up`, which creates the local CA), or set BJSV_PKI_DIR to the folder holding them."
        )
    for label, path in (("CA", paths[0]), (f"{component} certificate", paths[1])):
        expiry = not_after(path)
        if expiry <= _now():
            fix = "supervisionctl certs init --new-ca" if label == "CA" else "supervisionctl certs rotate"
            raise StartupError(f"the {label} {path} expired on {expiry:%Y-%m-%d %H:%M} UTC. Fix: run `{fix}`.")
    return paths


class Rotating(Exception):
    """The key and certificate on disk do not belong together yet (a rotation is between its two renames)."""


def read_material(paths: tuple[Path, Path, Path]) -> tuple[bytes, bytes, bytes]:
    """CA, certificate and key bytes, checked to be a matching pair (raises Rotating otherwise)."""
    ca, cert, key = (p.read_bytes() for p in paths)
    public = serialization.load_pem_private_key(key, password=None).public_key()
    if x509.load_pem_x509_certificate(cert).public_key() != public:
        raise Rotating(str(paths[1]))
    return ca, cert, key


class _Reloader:
    """Certificate fetcher for grpc.dynamic_ssl_server_credentials: called on every new handshake, it
    returns a new configuration only when the files changed (one stat per handshake)."""

    def __init__(self, paths: tuple[Path, Path, Path]) -> None:
        self.paths = paths
        self.stamp = self._stamp()
        self.config = self._load()

    def _stamp(self) -> tuple[int, ...]:
        return tuple(p.stat().st_mtime_ns for p in self.paths)

    def _load(self) -> grpc.ServerCertificateConfiguration:
        ca, cert, key = read_material(self.paths)
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)

    def __call__(self) -> grpc.ServerCertificateConfiguration | None:
        try:
            stamp = self._stamp()
            if stamp == self.stamp:
                return None
            self.config, self.stamp = self._load(), stamp
            log.info("TLS certificate reloaded from %s", self.paths[1])
            return self.config
        except Rotating:  # caught between the key's and the certificate's rename: the next handshake retries
            return None
        except (OSError, ValueError) as e:  # unreadable: keep serving with the current one
            log.warning("TLS certificate reload failed, keeping the current one: %s", e)
            return None


class HttpsReloader:
    """The `sni_callback` of an HTTPS server's context (uvicorn's, for the embedded issuer): called on every
    handshake, it hands the connection a context with the certificate now on disk once the files changed (one
    stat per handshake), so `certs rotate` reaches it without a restart, as _Reloader does for gRPC."""

    def __init__(self, paths: tuple[Path, Path, Path]) -> None:
        self.paths = paths
        self.stamp = self._stamp()
        self.context: ssl.SSLContext | None = None  # None: the server's own context is still current

    def _stamp(self) -> tuple[int, ...]:
        return tuple(p.stat().st_mtime_ns for p in self.paths)

    def __call__(self, conn: ssl.SSLObject, server_name: str | None, current: ssl.SSLContext) -> None:
        try:
            stamp = self._stamp()
            if stamp != self.stamp:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(self.paths[1], self.paths[2])
                self.context, self.stamp = context, stamp
                log.info("TLS certificate reloaded from %s", self.paths[1])
        except ssl.SSLError:  # key and certificate caught between their two renames: the next handshake retries
            pass
        except OSError as e:  # unreadable: keep serving with the current one
            log.warning("TLS certificate reload failed, keeping the current one: %s", e)
        if self.context is not None:
            conn.context = self.context


def server_credentials(settings: Settings, component: str) -> grpc.ServerCredentials | None:
    """Mutual-TLS server credentials (client certificates from the stack CA required), reloaded on rotation;
    None in the explicit plaintext development mode (BJSV_TLS=off), which is logged as a warning."""
    if not settings.tls_enabled:
        log.warning("BJSV_TLS=off: %s serves PLAINTEXT gRPC (development only; never in production)", component)
        return None
    reloader = _Reloader(usable(settings, component))
    # grpc calls the fetcher per handshake and keeps the current configuration when it returns None (grpc docs);
    # its stub types the fetcher as never returning None.
    return grpc.dynamic_ssl_server_credentials(reloader.config, reloader, require_client_authentication=True)  # type: ignore[arg-type]


_channel_creds: dict[tuple, grpc.ChannelCredentials] = {}


def channel_credentials(settings: Settings, component: str | None = None) -> grpc.ChannelCredentials | None:
    """The credentials an outgoing channel presents (this process's component certificate); None when off.
    Cached per file version, so channels made after a rotation present the new certificate."""
    if not settings.tls_enabled:
        return None
    folder = root(settings)
    component = component or _identity
    paths = (cert_path(folder, "ca"), cert_path(folder, component), key_path(folder, component))
    try:
        stamp = (*paths, *(p.stat().st_mtime_ns for p in paths))
    except FileNotFoundError:
        raise StartupError(
            f"TLS is on but the {component} certificate is missing under {folder}. Fix: run "
            "`supervisionctl certs init`, set BJSV_PKI_DIR, or (development only) BJSV_TLS=off."
        ) from None
    creds = _channel_creds.get(stamp)
    if creds is None:
        ca, cert, key = _settled(paths)
        creds = _channel_creds[stamp] = grpc.ssl_channel_credentials(ca, key, cert)
    return creds


def _settled(paths: tuple[Path, Path, Path]) -> tuple[bytes, bytes, bytes]:
    """read_material, waiting out a rotation caught between its two renames (microseconds)."""
    for _ in range(50):
        try:
            return read_material(paths)
        except Rotating:
            time.sleep(0.01)
    return read_material(paths)


def ssl_context(settings: Settings | None = None, component: str = "supervisionctl") -> ssl.SSLContext | None:
    """A client TLS context for NATS presenting `component`'s certificate (its NATS user: a service's Bus
    passes its name; scripts and tests are the operator); None when TLS is off."""
    settings = settings or Settings()
    if not settings.tls_enabled:
        return None
    folder = root(settings)
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert_path(folder, "ca")))
    _settled((cert_path(folder, "ca"), cert_path(folder, component), key_path(folder, component)))
    ctx.load_cert_chain(cert_path(folder, component), key_path(folder, component))
    return ctx


def peer_component(auth_context: dict) -> str:
    """The CN of the verified client certificate of a call (grpc `context.auth_context()`), or ''."""
    pem = (auth_context.get("x509_pem_cert") or [b""])[0]
    if not pem:
        return ""
    cert = x509.load_pem_x509_certificate(pem)
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else ""
