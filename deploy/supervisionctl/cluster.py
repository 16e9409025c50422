"""The cluster profile (`supervisionctl up --cluster`): the scale-out shape on one machine.

Three nats-server nodes clustered with JetStream (streams with 3 replicas), with the TLS and per-service users
of the single embedded server and TLS between the nodes; PostgreSQL (DATABASE_URL, or a private instance made
with Debian's initdb/pg_ctl under the data folder); two replicas of every service on their own ports; every
client reaches a service through `ipv4:host:p1,host:p2` (common.clients.balancing: round-robin with health
checks). The layout is kept in <data>/run/cluster.json for `status`, `down` and the fault bench.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from common.config import DEFAULT_PORTS, SERVICES
from supervisionctl.natsd import NatsServer, port_open
from supervisionctl.stack import Stack, StackConfig, StackError, health_status

NODES = 3
REPLICAS = 2
SECOND_REPLICA_OFFSET = 10  # fixed layout: replica 2 of registry listens on 50061, ...
LAYOUT_FILE = "cluster.json"


@dataclass
class Node:
    name: str
    port: int
    route_port: int
    http_port: int


@dataclass
class Replica:
    name: str  # "registry-1"
    service: str
    port: int
    metrics_port: int


@dataclass
class Layout:
    data_dir: Path
    host: str
    nodes: list[Node]
    replicas: list[Replica]
    database_url: str = ""  # empty: the private PostgreSQL below
    pg_port: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)
    identity_port: int = 0  # the embedded issuer's; 0 = BJSV_IDENTITY_PORT (or its default)

    @classmethod
    def allocate(
        cls,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        database_url: str = "",
        ports: dict[str, int] | None = None,
        nats_port: int = 0,
    ) -> Layout:
        """With `ports` (the operator's BJSV_<NAME>_PORT) replica 1 keeps them, so the CLI's defaults reach
        it, replica 2 is 10 above, node i serves on nats_port + i (routes +2000, monitoring +4000); without,
        free ports (tests, the bench)."""

        taken: set[int] = set()

        def port(fixed: int) -> int:
            return fixed if ports else unused_port(host, taken)

        nodes = [Node(f"nats-{i + 1}", *(port(nats_port + i + k) for k in (0, 2000, 4000))) for i in range(NODES)]
        replicas = []
        for service in SERVICES:
            for i in range(REPLICAS):
                grpc_port = port((ports or DEFAULT_PORTS)[service] + i * SECOND_REPLICA_OFFSET)
                replicas.append(Replica(f"{service}-{i + 1}", service, grpc_port, port(grpc_port + 1000)))
        return cls(data_dir, host, nodes, replicas, database_url, 0 if database_url else port(nats_port + 1210))

    @property
    def nats_url(self) -> str:
        return ",".join(f"nats://{self.host}:{n.port}" for n in self.nodes)

    def target(self, service: str) -> str:
        return "ipv4:" + ",".join(f"{self.host}:{r.port}" for r in self.replicas if r.service == service)

    @property
    def db_url(self) -> str:
        return self.database_url or f"postgresql+psycopg://postgres@{self.host}:{self.pg_port}/postgres"

    def env(self) -> dict[str, str]:
        """What every process of the cluster (and a CLI pointed at it) sees."""
        return {
            "BJSV_NATS_URL": self.nats_url,
            "BJSV_NATS_EMBEDDED": "false",
            "BJSV_NATS_REPLICAS": str(NODES),
            "DATABASE_URL": self.db_url,
            **{f"BJSV_{s.upper()}_TARGET": self.target(s) for s in SERVICES},
            **self.extra_env,
        }

    def stack_config(self) -> StackConfig:
        first = {r.service: r.port for r in self.replicas if r.name.endswith("-1")}
        return StackConfig(
            data_dir=self.data_dir,
            host=self.host,
            nats_port=self.nodes[0].port,
            ports=first,
            external_nats_url=self.nats_url,
            extra_env=self.env(),
            **({"identity_port": self.identity_port} if self.identity_port else {}),
        )

    def save(self) -> None:
        path = self.data_dir / "run" / LAYOUT_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), default=str, indent=2))

    @classmethod
    def load(cls, data_dir: Path) -> Layout | None:
        path = data_dir / "run" / LAYOUT_FILE
        if not path.exists():
            return None
        raw = json.loads(path.read_text())
        return cls(
            Path(raw["data_dir"]),
            raw["host"],
            [Node(**n) for n in raw["nodes"]],
            [Replica(**r) for r in raw["replicas"]],
            raw["database_url"],
            raw["pg_port"],
            raw["extra_env"],
            raw["identity_port"],
        )


def unused_port(host: str, taken: set[int]) -> int:
    """A free port below the kernel's ephemeral range: a free_port() from inside that range can be taken by
    an outgoing connection of the cluster's own processes before the replica that should listen on it starts."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    rng = random.Random()
    while True:
        candidate = rng.randrange(max(1024, low - 12000), low)
        if candidate in taken:
            continue
        with socket.socket() as s:
            try:
                s.bind((host, candidate))
            except OSError:
                continue
        taken.add(candidate)
        return candidate


class PrivatePostgres:
    """A PostgreSQL instance of this cluster only (trust auth, loopback), made with Debian's initdb/pg_ctl.
    initdb refuses to run as root, so as root the files belong to the `postgres` account."""

    def __init__(self, folder: Path, host: str, port: int) -> None:
        self.folder, self.host, self.port = folder, host, port

    @property
    def log_file(self) -> Path:
        return self.folder.resolve() / "postgres.log"  # where the postgres account may write (see start)

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        binary = shutil.which(args[0]) or next(Path("/usr/lib/postgresql").glob(f"*/bin/{args[0]}"), None)
        if binary is None:
            raise StackError(
                "找不到 PostgreSQL（initdb/pg_ctl）。处理：apt-get install postgresql，或设置 DATABASE_URL。"
            )
        cmd = [str(binary), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        if os.geteuid() == 0:  # the postgres account must reach the folder: it lives in /tmp, linked from data
            link = self.folder
            if not link.is_symlink():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(tempfile.mkdtemp(prefix="bjsv-pg-", dir="/tmp"))
                shutil.chown(link.resolve(), "postgres", "postgres")
        if not (self.folder / "PG_VERSION").exists():
            done = self._run("initdb", "-D", str(self.folder.resolve()), "-A", "trust", "-U", "postgres")
            if done.returncode != 0:
                raise StackError(f"initdb 失败：{done.stderr.strip()}")
        options = f"-p {self.port} -h {self.host} -k {self.folder.resolve()}"
        started = self._run(
            "pg_ctl", "start", "-w", "-D", str(self.folder.resolve()), "-l", str(self.log_file), "-o", options
        )
        if started.returncode != 0:
            raise StackError(f"PostgreSQL 无法启动：{started.stderr.strip() or started.stdout.strip()}")

    def pid(self) -> int:
        return int((self.folder / "postmaster.pid").read_text().split()[0])

    def restart(self) -> None:
        """Fast restart (every connection is cut), as an operator or a failover would."""
        done = self._run(
            "pg_ctl", "restart", "-w", "-m", "fast", "-D", str(self.folder.resolve()), "-l", str(self.log_file)
        )
        if done.returncode != 0:
            raise StackError(f"PostgreSQL 重启失败：{done.stderr.strip()}")

    def stop(self) -> None:
        if (self.folder / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.folder.resolve()))


class Cluster:
    """Starts, stops and (for the fault bench) kills the parts of a cluster layout."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.stack = Stack(layout.stack_config(), services=())  # PKI, the embedded issuer, tokens, logs
        self.config = self.stack.config
        self.nodes: dict[str, NatsServer] = {}
        self.postgres: PrivatePostgres | None = None

    def start(self, *, timeout: float = 90.0, detach: bool = False) -> None:
        lay, cfg = self.layout, self.config
        busy = [f"{r.name} {r.port}" for r in lay.replicas if port_open(lay.host, r.port)]
        if busy:
            raise StackError(f"端口已被占用：{'、'.join(busy)}。处理：先执行 `supervisionctl down`。")
        for d in (cfg.run_dir, cfg.log_dir):
            d.mkdir(parents=True, exist_ok=True)
        lay.save()
        pki = self.stack.ensure_pki()
        try:
            if not lay.database_url:
                self.postgres = PrivatePostgres(lay.data_dir / "postgres", lay.host, lay.pg_port)
                self.postgres.start()
                self._pid("postgres", self.postgres.pid())
            for node in lay.nodes:
                self.start_node(node.name, pki=pki, detach=detach)
            self.wait_jetstream(timeout=timeout)
            self.stack.start(timeout=timeout, detach=detach)  # the issuer (no services: the replicas follow)
            # Replica 1 of every service first: it migrates and loads the rule sets, which two first starts at
            # once would race on (as the migration Job does before a rollout in Kubernetes); then the rest.
            for wave in (
                [r for r in lay.replicas if r.name.endswith("-1")],
                [r for r in lay.replicas if not r.name.endswith("-1")],
            ):
                for r in wave:
                    self.start_replica(r.name, detach=detach)
                self.wait_serving(timeout=timeout, names=tuple(r.name for r in wave))
        except BaseException:
            self.stop()
            raise

    # -- NATS nodes --------------------------------------------------------------------------------------

    def node(self, name: str) -> Node:
        return next(n for n in self.layout.nodes if n.name == name)

    def start_node(self, name: str, *, pki: Path | None = None, detach: bool = False) -> None:
        lay, node = self.layout, self.node(name)
        pki = pki if pki is not None else self.stack.ensure_pki()
        cluster: dict = {
            "name": "bjsv",
            "host": lay.host,
            "port": node.route_port,
            "routes": [f"nats-route://{lay.host}:{n.route_port}" for n in lay.nodes if n.name != name],
        }
        if pki is not None:  # the nodes authenticate each other with the stack CA as clients do
            tls = {
                "cert_file": str(pki / "nats.crt"),
                "key_file": str(pki / "nats.key"),
                "ca_file": str(pki / "ca.crt"),
            }
            cluster["tls"] = {**tls, "verify": True, "timeout": 3}
        server = NatsServer(
            store_dir=lay.data_dir / name,
            port=node.port,
            host=lay.host,
            log_file=self.config.log_dir / f"{name}.log",
            name=name,
            pki=pki,
            extra={"cluster": cluster, "http_port": node.http_port},
        )
        try:
            server.start(detach=detach)
        except RuntimeError as e:
            raise StackError(f"NATS 节点 {name} 无法启动：{e}") from None
        self.nodes[name] = server
        self._pid(name, server.proc.pid)

    def monitor(self, name: str, path: str, timeout: float = 1.0) -> dict | None:
        """A node's monitoring endpoint (/jsz, /healthz, ...) as JSON; None when it does not answer."""
        url = f"http://{self.layout.host}:{self.node(name).http_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                return json.loads(resp.read())
        except (OSError, ValueError):
            return None

    def meta_leader(self) -> str | None:
        for node in self.layout.nodes:
            info = self.monitor(node.name, "/jsz")
            leader = ((info or {}).get("meta_cluster") or {}).get("leader")
            if leader:
                return leader
        return None

    def stream_leader(self, stream: str) -> str | None:
        for node in self.layout.nodes:
            info = self.monitor(node.name, "/jsz?streams=true") or {}
            for account in info.get("account_details") or []:
                for s in account.get("stream_detail") or []:
                    if s.get("name") == stream and (s.get("cluster") or {}).get("leader"):
                        return s["cluster"]["leader"]
        return None

    def wait_jetstream(self, timeout: float = 60.0) -> None:
        """JetStream answers once the nodes elected a meta leader; services create their R3 streams then."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.meta_leader() and all(self.monitor(n, "/healthz") == {"status": "ok"} for n in self.nodes):
                return
            time.sleep(0.2)
        raise StackError(f"{timeout:.0f} 秒内 NATS 集群未选出 JetStream 元数据主节点")

    # -- service replicas --------------------------------------------------------------------------------

    def replica(self, name: str) -> Replica:
        return next(r for r in self.layout.replicas if r.name == name)

    def start_replica(self, name: str, *, detach: bool = False) -> subprocess.Popen:
        r = self.replica(name)
        env = self.config.service_env()
        env.update(
            {
                f"BJSV_{r.service.upper()}_PORT": str(r.port),
                f"BJSV_{r.service.upper()}_METRICS_PORT": str(r.metrics_port),
            }
        )
        with open(self.config.log_dir / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", f"services.{r.service}"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=detach,
            )
        self.stack.procs[name] = proc
        self._pid(name, proc.pid)
        return proc

    def wait_serving(self, *, timeout: float = 60.0, names: tuple[str, ...] | None = None) -> None:
        deadline = time.monotonic() + timeout
        pending = set(names or (r.name for r in self.layout.replicas))
        settings = self.config.settings()
        while pending and time.monotonic() < deadline:
            for name in sorted(pending):
                proc = self.stack.procs[name]
                if proc.poll() is not None:
                    raise StackError(f"{name} 已退出（退出码 {proc.returncode}）：\n{self.stack.tail(name)}")
                if (
                    health_status(f"{self.layout.host}:{self.replica(name).port}", timeout=0.5, settings=settings)
                    == "SERVING"
                ):
                    pending.discard(name)
            if pending:
                time.sleep(0.2)
        if pending:
            raise StackError(f"{timeout:.0f} 秒内未就绪（SERVING）：{'、'.join(sorted(pending))}")

    def restart_postgres(self) -> None:
        """Restart the private PostgreSQL (never one given in DATABASE_URL), keeping its pid file current."""
        if self.postgres is None:
            raise StackError("只能重启本集群自建的 PostgreSQL")
        self.postgres.restart()
        self._pid("postgres", self.postgres.pid())

    def kill(self, name: str) -> None:
        """SIGKILL a replica or a NATS node (the fault bench)."""
        proc = self.nodes[name].proc if name in self.nodes else self.stack.procs[name]
        proc.kill()
        proc.wait()

    # -- stop --------------------------------------------------------------------------------------------

    def stop(self) -> dict[str, int | None]:
        """Replicas and the issuer first (they drain), then the NATS nodes, then a private PostgreSQL."""
        codes = self.stack.stop()
        for name, server in self.nodes.items():
            server.stop()
            (self.config.run_dir / f"{name}.pid").unlink(missing_ok=True)
        if self.postgres is not None:
            self.postgres.stop()
            (self.config.run_dir / "postgres.pid").unlink(missing_ok=True)
        (self.config.run_dir / LAYOUT_FILE).unlink(missing_ok=True)
        return codes

    def _pid(self, name: str, pid: int) -> None:
        (self.config.run_dir / f"{name}.pid").write_text(str(pid))


def cluster_status(layout: Layout) -> dict:
    """Every NATS node (reachable, JetStream meta leader) and every replica (health) for `status`."""
    cluster = Cluster(layout)
    leader = cluster.meta_leader()
    settings = cluster.config.settings()
    nodes = {
        n.name: {
            "url": f"nats://{layout.host}:{n.port}",
            "healthy": cluster.monitor(n.name, "/healthz") == {"status": "ok"},
            "meta_leader": n.name == leader,
        }
        for n in layout.nodes
    }
    replicas = {
        r.name: {
            "target": f"{layout.host}:{r.port}",
            "health": health_status(f"{layout.host}:{r.port}", settings=settings),
        }
        for r in layout.replicas
    }
    return {"nodes": nodes, "replicas": replicas, "database": layout.db_url.split("@")[-1]}
