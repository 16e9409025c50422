"""The whole system on one machine: an embedded nats-server, the embedded OIDC issuer and the four services
as processes.

Used by `supervisionctl up/down/status` and by the test suite's `stack` fixture, so tests run exactly
what an operator runs. Processes record their pid under <data>/run and log to <data>/logs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common import pki
from common.auth import issuer_tls
from common.auth.config import AuthSettings
from common.auth.credentials import admin_token
from common.clients import sync_channel
from common.config import DEFAULT_PORTS, SERVICES, Settings
from supervisionctl.natsd import NatsServer, port_open

NATS_PORT = 14222  # never the 4222 a machine may already run
METRICS_PORT_OFFSET = 1000  # `supervisionctl up`: a service's /metrics port is its gRPC port + 1000 by default


@dataclass
class StackConfig:
    data_dir: Path
    host: str = "127.0.0.1"
    nats_port: int = NATS_PORT
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    external_nats_url: str | None = None  # BJSV_NATS_URL set by the operator: do not start our own
    metrics_ports: dict[str, int] = field(default_factory=dict)  # /metrics per service; none unless given
    extra_env: dict[str, str] = field(default_factory=dict)
    console_port: int | None = None  # the web console (services/console) on this port; None = not started

    @property
    def console_url(self) -> str:
        scheme = "https" if self.settings().tls_enabled else "http"  # the console serves TLS as gRPC does
        return f"{scheme}://{self.host}:{self.console_port}/"

    identity_port: int = field(default_factory=lambda: AuthSettings().identity_port)
    embedded_issuer: bool = field(default_factory=lambda: AuthSettings().embedded)  # False: BJSV_OIDC_ISSUER set

    @property
    def issuer(self) -> str:
        return self.auth_settings().issuer

    def auth_settings(self) -> AuthSettings:
        """The identity settings this stack's services see (issuer URL and trust), for the stack itself."""
        env = self.service_env()
        keys = ("tls", "pki_dir", "tls_hostnames", "identity_dir")
        return AuthSettings(
            data_dir=self.data_dir,
            bind_host=self.host,
            identity_port=self.identity_port,
            **{k: env[f"BJSV_{k.upper()}"] for k in keys if env.get(f"BJSV_{k.upper()}")},
        )

    @property
    def nats_url(self) -> str:
        return self.external_nats_url or f"nats://{self.host}:{self.nats_port}"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def target(self, service: str) -> str:
        return f"{self.host}:{self.ports[service]}"

    def settings(self) -> Settings:
        """The platform settings this stack's services see (TLS mode, PKI folder), for the stack itself."""
        env = self.service_env()
        keys = ("tls", "pki_dir", "tls_hostnames")
        return Settings(
            data_dir=self.data_dir, **{k: env[f"BJSV_{k.upper()}"] for k in keys if f"BJSV_{k.upper()}" in env}
        )

    def service_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "BJSV_DATA_DIR": str(self.data_dir),
                "BJSV_BIND_HOST": self.host,
                "BJSV_NATS_URL": self.nats_url,
                **{f"BJSV_{name.upper()}_PORT": str(port) for name, port in self.ports.items()},
                **{f"BJSV_{name.upper()}_METRICS_PORT": str(port) for name, port in self.metrics_ports.items()},
                "BJSV_IDENTITY_PORT": str(self.identity_port),
            }
        )
        if self.console_port:
            env["BJSV_CONSOLE_PORT"] = str(self.console_port)
        if self.embedded_issuer:  # unless the environment names the folder of an issuer that already runs
            env.setdefault("BJSV_IDENTITY_DIR", str(self.data_dir / "identity"))
        env.update(self.extra_env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env


def configured_console_port(env: dict[str, str] | None = None) -> int | None:
    """The console starts with the rest, on BJSV_CONSOLE_PORT (8080); `0` leaves it out."""
    env = dict(os.environ) if env is None else env
    return int(env.get("BJSV_CONSOLE_PORT", "8080")) or None


class StackError(RuntimeError):
    pass


def health_status(target: str, service: str = "", timeout: float = 1.0, settings: Settings | None = None) -> str:
    """SERVING / NOT_SERVING / UNKNOWN / SERVICE_UNKNOWN, or UNREACHABLE."""
    with sync_channel(target, settings=settings) as ch:
        try:
            resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as e:
            return "SERVICE_UNKNOWN" if e.code() == grpc.StatusCode.NOT_FOUND else "UNREACHABLE"
    return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)


class Stack:
    def __init__(self, config: StackConfig, services: tuple[str, ...] = SERVICES) -> None:
        self.config = config
        self.services = services
        self.nats: NatsServer | None = None
        self.procs: dict[str, subprocess.Popen] = {}

    # -- start -------------------------------------------------------------------------------------------

    def start(self, *, timeout: float = 60.0, detach: bool = False) -> None:
        cfg = self.config
        for d in (cfg.run_dir, cfg.log_dir):
            d.mkdir(parents=True, exist_ok=True)
        busy = [f"{name} {cfg.target(name)}" for name in self.services if port_open(cfg.host, cfg.ports[name])]
        if cfg.console_port and port_open(cfg.host, cfg.console_port):
            busy.append(f"console {cfg.host}:{cfg.console_port}")
        if busy:
            raise StackError(
                f"端口已被占用：{'、'.join(busy)}。处理：如有上次启动的系统仍在运行，先执行 `supervisionctl down`；"
                "或用 BJSV_<SERVICE>_PORT 换一个端口。"
            )
        tls_root = self.ensure_pki()
        if cfg.external_nats_url is None:
            self.nats = NatsServer(
                store_dir=cfg.data_dir / "nats",
                port=cfg.nats_port,
                host=cfg.host,
                log_file=cfg.log_dir / "nats.log",
                pki=tls_root,
            )
            try:
                self.nats.start(detach=detach)
            except RuntimeError as e:
                raise StackError(f"内置 NATS 无法启动：{e}") from None
            self._write_pid("nats", self.nats.proc.pid)
        try:
            if cfg.embedded_issuer and not self.issuer_serving():  # first: services fetch keys and tokens from it
                self.start_service("identity", detach=detach)
                self.wait_issuer(timeout=timeout)
            for name in self.services:
                self.start_service(name, detach=detach)
            self.wait_serving(timeout=timeout)
            if cfg.console_port:
                self.start_console(timeout=timeout, detach=detach)
        except BaseException:
            self.stop()
            raise

    def ensure_pki(self) -> Path | None:
        """TLS on: the local CA and every component certificate, created at the first start; None when off."""
        settings = self.config.settings()
        if not settings.tls_enabled:
            print("警告：BJSV_TLS=off，gRPC 与 NATS 均为明文传输，仅限开发环境使用。", file=sys.stderr)
            return None
        folder = pki.root(settings)
        pki.ensure(folder, hostnames=settings.hostnames())
        return folder

    def start_service(self, name: str, *, detach: bool = False) -> subprocess.Popen:
        cfg = self.config
        with open(cfg.log_dir / f"{name}.log", "ab") as log:  # the child keeps its own copy of the fd
            proc = subprocess.Popen(
                [sys.executable, "-m", f"services.{name}"],
                env=cfg.service_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=detach,
            )
        self.procs[name] = proc
        self._write_pid(name, proc.pid)
        return proc

    def wait_serving(self, *, timeout: float = 60.0, names: tuple[str, ...] | None = None) -> None:
        deadline = time.monotonic() + timeout
        pending = set(names or self.services)
        settings = self.config.settings()
        while pending and time.monotonic() < deadline:
            for name in sorted(pending):
                proc = self.procs.get(name)
                if proc is not None and proc.poll() is not None:
                    raise StackError(f"{name} 服务已退出（退出码 {proc.returncode}）：\n{self.tail(name)}")
                if health_status(self.config.target(name), timeout=0.5, settings=settings) == "SERVING":
                    pending.discard(name)
            if pending:
                time.sleep(0.1)
        if pending:
            raise StackError(f"{timeout:.0f} 秒内未就绪（SERVING）：{'、'.join(sorted(pending))}")

    def start_console(self, *, timeout: float = 60.0, detach: bool = False) -> None:
        """The web console is HTTP(S), not gRPC: ready when its port accepts connections."""
        proc = self.start_service("console", detach=detach)
        deadline = time.monotonic() + timeout
        while not port_open(self.config.host, self.config.console_port or 0):
            if proc.poll() is not None:
                raise StackError(f"console 已退出（退出码 {proc.returncode}）：\n{self.tail('console')}")
            if time.monotonic() > deadline:
                raise StackError(f"{timeout:.0f} 秒内 console 未就绪")
            time.sleep(0.1)

    def issuer_serving(self) -> bool:
        try:
            with issuer_tls.urlopen(self.config.auth_settings(), f"{self.config.issuer}/healthz", 0.5):
                return True
        except OSError:
            return False

    def wait_issuer(self, *, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.procs["identity"]
            if proc.poll() is not None:
                raise StackError(f"identity 服务已退出（退出码 {proc.returncode}）：\n{self.tail('identity')}")
            if self.issuer_serving():
                return
            time.sleep(0.1)
        raise StackError(f"{timeout:.0f} 秒内身份认证服务（identity）未就绪")

    def token(self, org: str, *roles: str, subject: str = "") -> str:
        """A bearer token from this stack's issuer (local admin credential), for tests and the CLI."""
        return admin_token(self.config.auth_settings(), org, list(roles), subject)

    # -- stop --------------------------------------------------------------------------------------------

    def stop(self, timeout: float = 12.0) -> dict[str, int | None]:
        """SIGTERM every service (they drain and exit 0), then the embedded NATS; returns exit codes."""
        codes: dict[str, int | None] = {}
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in self.procs.items():
            try:
                codes[name] = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = proc.wait()
            self._pid_file(name).unlink(missing_ok=True)
        if self.nats is not None:
            self.nats.stop()
            self._pid_file("nats").unlink(missing_ok=True)
        return codes

    def kill_service(self, name: str) -> None:
        proc = self.procs[name]
        proc.kill()
        proc.wait()

    def restart_service(self, name: str, timeout: float = 30.0) -> None:
        self.start_service(name)
        self.wait_serving(timeout=timeout, names=(name,))

    # -- helpers -----------------------------------------------------------------------------------------

    def _pid_file(self, name: str) -> Path:
        return self.config.run_dir / f"{name}.pid"

    def _write_pid(self, name: str, pid: int) -> None:
        self._pid_file(name).write_text(str(pid))

    def tail(self, name: str, lines: int = 20) -> str:
        path = self.config.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def running_pids(config: StackConfig) -> dict[str, int]:
    """Processes a (possibly detached) stack recorded under <data>/run that are still alive."""
    out: dict[str, int] = {}
    if not config.run_dir.exists():
        return out
    for f in sorted(config.run_dir.glob("*.pid")):
        try:
            pid = int(f.read_text().strip())
            os.kill(pid, 0)
        except (ValueError, ProcessLookupError, PermissionError):
            f.unlink(missing_ok=True)
            continue
        out[f.stem] = pid
    return out


def stop_pids(config: StackConfig, timeout: float = 12.0, names: tuple[str, ...] | None = None) -> dict[str, str]:
    """Stop a detached stack (or only `names`) by its pid files: services first (SIGTERM, then SIGKILL), NATS
    last."""
    pids = {n: pid for n, pid in running_pids(config).items() if names is None or n in names}
    # The cluster profile's NATS nodes (nats-1..3) and private PostgreSQL also go after the services.
    last = {n for n in pids if n.startswith("nats") or n == "postgres"}
    result: dict[str, str] = {}
    for group in ([n for n in pids if n not in last], sorted(last)):
        for name in group:
            # The pid file goes first: a foreground `up` watching the process then knows the exit is wanted.
            (config.run_dir / f"{name}.pid").unlink(missing_ok=True)
            os.kill(pids[name], signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name in group:
            while time.monotonic() < deadline and _alive(pids[name]):
                time.sleep(0.05)
            if _alive(pids[name]):
                os.kill(pids[name], signal.SIGKILL)
                result[name] = "killed"
            else:
                result[name] = "stopped"
            (config.run_dir / f"{name}.pid").unlink(missing_ok=True)
    return result


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours still "exists"; reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True
