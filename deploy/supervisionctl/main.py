"""`supervisionctl` — run and inspect the supervision platform (北京市职业技能等级认定质量督导).

    supervisionctl up [--detach]        start embedded NATS + the four services, wait until SERVING
    supervisionctl down                 stop a running stack (services first, NATS last)
    supervisionctl status [--json]      health, version, NATS streams, consumer lag, outbox backlog
    supervisionctl restart|stop|start SERVICE   one service of a running stack
    supervisionctl outbox list|retry|discard    outbox rows the relay parked
    supervisionctl logs [SERVICE] [-f]  show service logs
    supervisionctl migrate              apply every service's database migrations
    supervisionctl doctor               check this machine and say how to fix each problem
    supervisionctl seed [--demo]        city centre + 17 districts; --demo adds sample data
    supervisionctl auth token|create|list|disable|enable|rotate-keys   tokens and accounts (embedded issuer)

Exit codes: 0 ok · 1 a check or command failed · 2 bad configuration/usage · 3 a service is unreachable.
Configuration comes from the BJSV_* environment variables (README, Configuration).
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import time
from typing import Annotated
from urllib.parse import urlparse

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperCommand, TyperGroup

from common import pki
from common.config import SERVICES, Settings
from supervisionctl import (
    audit_cmds,
    auth_cmds,
    certs_cmds,
    documents_cmds,
    notify_cmds,
    ops_cmds,
    registry_cmds,
    rules_cmds,
    supervision_cmds,
)
from supervisionctl.cluster import LAYOUT_FILE, Cluster, Layout, cluster_status
from supervisionctl.rpc import JsonOpt
from supervisionctl.stack import (
    METRICS_PORT_OFFSET,
    Stack,
    StackConfig,
    StackError,
    configured_console_port,
    health_status,
    running_pids,
    stop_pids,
)


def _help_option_in_chinese(cls: type) -> None:
    """Typer hard-codes the --help text in English; every command of this CLI shows it in Chinese."""
    original = cls.get_help_option

    def get_help_option(self, ctx):
        option = original(self, ctx)
        if option is not None:
            option.help = "显示本帮助信息并退出"
        return option

    cls.get_help_option = get_help_option


_help_option_in_chinese(TyperCommand)
_help_option_in_chinese(TyperGroup)

app = typer.Typer(help="北京市职业技能等级认定质量督导平台 运维命令", no_args_is_help=True, add_completion=False)
console = Console()
err = Console(stderr=True)

# Command groups owned by the services' developers; each module exposes `app` (a typer.Typer).
app.add_typer(registry_cmds.app, name="registry")
app.add_typer(supervision_cmds.app, name="supervision")
app.add_typer(notify_cmds.app, name="notify")
app.add_typer(documents_cmds.app, name="badge")
app.add_typer(rules_cmds.app, name="rules")
app.add_typer(ops_cmds.app, name="outbox")
app.add_typer(auth_cmds.app, name="auth")
auth_cmds.app.command("ca-path")(certs_cmds.ca_path)  # where clients find the stack's CA (TLS)
app.add_typer(certs_cmds.app, name="certs")
app.add_typer(audit_cmds.app, name="audit")
# `supervisionctl print-badges` is what the print room types; it is the badge group's command.
app.command("print-badges")(documents_cmds.print_badges)


def stack_config(settings: Settings) -> StackConfig:
    nats = urlparse(settings.nats_servers()[0])
    return StackConfig(
        data_dir=settings.data_dir.resolve(),
        host=settings.bind_host,
        nats_port=nats.port or 4222,
        ports={name: settings.port(name) for name in SERVICES},
        external_nats_url=None if settings.nats_embedded else settings.nats_url,
        metrics_ports={
            name: settings.metrics_port(name) or settings.port(name) + METRICS_PORT_OFFSET for name in SERVICES
        },
        console_port=configured_console_port(),
    )


def endpoints_table(cfg: StackConfig) -> Table:
    table = Table(title="督导平台服务")
    for col in ("服务", "地址", "状态", "进程"):
        table.add_column(col)
    pids = running_pids(cfg)
    for name in SERVICES:
        table.add_row(name, cfg.target(name), health_status(cfg.target(name)), str(pids.get(name, "-")))
    if cfg.embedded_issuer:
        table.add_row("identity", cfg.issuer, "RUNNING", str(pids.get("identity", "-")))
    table.add_row("nats", cfg.nats_url, "EXTERNAL" if cfg.external_nats_url else "RUNNING", str(pids.get("nats", "-")))
    if cfg.console_port:
        table.add_row("console", cfg.console_url, "RUNNING", str(pids.get("console", "-")))
    return table


@app.command()
def up(
    detach: Annotated[bool, typer.Option("--detach", "-d", help="在后台启动后立即返回")] = False,
    timeout: Annotated[float, typer.Option(help="等待全部服务进入 SERVING 状态的最长秒数")] = 60.0,
    cluster: Annotated[
        bool,
        typer.Option("--cluster", help="集群方式：三个 NATS 节点（JetStream 三副本）、PostgreSQL、每个服务两个副本"),
    ] = False,
) -> None:
    """启动整个系统（内置 NATS + 四个服务 + 控制台），全部 SERVING 后显示端点；Ctrl-C 干净地停止。"""
    settings = Settings()
    cfg = stack_config(settings)
    if running_pids(cfg):
        err.print(f"[red]已有一个系统在运行（{cfg.run_dir}）：先执行 supervisionctl down[/red]")
        raise typer.Exit(2)
    if cluster:
        _up_cluster(settings, timeout=max(timeout, 90.0), detach=detach)
        return
    stack = Stack(cfg)
    started = time.monotonic()
    with console.status("正在启动 NATS、身份认证服务、四个服务和控制台…"):
        try:
            stack.start(timeout=timeout, detach=detach)
        except StackError as e:
            err.print(f"[red]启动失败：{e}[/red]")
            raise typer.Exit(1) from None
    console.print(endpoints_table(cfg))
    if cfg.console_port:
        trust = f"（证书由本系统 CA 签发：{pki.ca_path(cfg.settings())}）" if cfg.settings().tls_enabled else ""
        console.print(f"控制台（网页与 HTTP/JSON API）：{cfg.console_url}{trust}")
    console.print(
        f"全部服务已就绪，用时 {time.monotonic() - started:.1f} 秒；数据目录 {cfg.data_dir}，日志 {cfg.log_dir}"
    )
    if detach:
        console.print("后台运行中。停止：supervisionctl down")
        return
    console.print("按 Ctrl-C 停止。")
    stopping = {"flag": False}

    def on_signal(_sig, _frame) -> None:
        stopping["flag"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    exit_code = 0
    while not stopping["flag"]:
        # A service stopped or restarted with `supervisionctl stop/restart` changed its pid file: not a crash.
        dead = [n for n, p in stack.procs.items() if p.poll() is not None and _pid_file_names(cfg, n, p.pid)]
        if stack.nats is not None and stack.nats.proc.poll() is not None and not dead:
            break  # `supervisionctl down` stopped the stack
        if dead:
            err.print(f"[red]服务意外退出：{', '.join(dead)}；日志：[/red]\n" + "\n".join(stack.tail(n) for n in dead))
            exit_code = 1
            break
        time.sleep(0.3)
    with console.status("正在停止…"):
        restarted = tuple(n for n, pid in running_pids(cfg).items() if n in SERVICES and pid != stack.procs[n].pid)
        stop_pids(cfg, names=restarted)  # services `supervisionctl start/restart` started outside this process
        codes = stack.stop()
    console.print("已停止：" + "，".join(f"{n}（退出码 {c}）" for n, c in codes.items()))
    raise typer.Exit(exit_code)


def _up_cluster(settings: Settings, *, timeout: float, detach: bool) -> None:
    layout = Layout.allocate(
        settings.data_dir.resolve(),
        host=settings.bind_host,
        database_url=settings.database_url or "",
        ports={name: settings.port(name) for name in SERVICES},
        nats_port=urlparse(settings.nats_servers()[0]).port or 14222,
    )
    cluster = Cluster(layout)
    with console.status("正在启动 PostgreSQL、三个 NATS 节点和每个服务的两个副本…"):
        try:
            cluster.start(timeout=timeout, detach=detach)
        except StackError as e:
            err.print(f"[red]启动失败：{e}[/red]")
            raise typer.Exit(1) from None
    _print_cluster(cluster_status(layout))
    env_file = layout.data_dir / "cluster.env"
    env_file.write_text("".join(f"export {k}='{v}'\n" for k, v in layout.env().items()))
    console.print(f"客户端（命令行、测试）使用集群：source {env_file}（各服务地址为副本列表，轮询并做健康检查）")
    if detach:
        console.print("后台运行中。停止：supervisionctl down")
        return
    console.print("按 Ctrl-C 停止。")
    stopping = {"flag": False}
    signal.signal(signal.SIGINT, lambda *_: stopping.update(flag=True))
    signal.signal(signal.SIGTERM, lambda *_: stopping.update(flag=True))
    while not stopping["flag"] and running_pids(cluster.config):  # `supervisionctl down` removes the pid files
        time.sleep(0.3)
    with console.status("正在停止…"):
        codes = cluster.stop()
    console.print("已停止：" + "，".join(f"{n}（退出码 {c}）" for n, c in codes.items()))


def _print_cluster(report: dict) -> None:
    table = Table(title=f"集群（数据库 {report['database']}）")
    for col in ("组件", "地址", "状态"):
        table.add_column(col)
    for name, n in report["nodes"].items():
        state = ("正常" if n["healthy"] else "不可用") + ("，JetStream 元数据主节点" if n["meta_leader"] else "")
        table.add_row(name, n["url"], state)
    for name, r in report["replicas"].items():
        table.add_row(name, r["target"], r["health"])
    console.print(table)


def _pid_file_names(cfg: StackConfig, name: str, pid: int) -> bool:
    path = cfg.run_dir / f"{name}.pid"
    return path.exists() and path.read_text().strip() == str(pid)


@app.command()
def down() -> None:
    """停止正在运行的系统（先停服务，最后停 NATS），不留下任何进程。"""
    cfg = stack_config(Settings())
    if not running_pids(cfg):
        console.print("没有正在运行的系统。")
        return
    result = stop_pids(cfg)
    (cfg.run_dir / LAYOUT_FILE).unlink(missing_ok=True)
    for name, how in result.items():
        console.print(f"{name}: {'已停止' if how == 'stopped' else '已强制结束'}")


def _nats_summary(url: str) -> dict:
    import asyncio

    import nats

    async def collect() -> dict:
        tls = pki.ssl_context()  # the operator's certificate: its NATS user may read every stream
        nc = await asyncio.wait_for(
            nats.connect(url.split(","), connect_timeout=2, max_reconnect_attempts=0, tls=tls), timeout=3
        )
        try:
            js = nc.jetstream()
            streams = await js.streams_info()
            summary = {
                s.config.name: {"messages": s.state.messages, "consumers": s.state.consumer_count} for s in streams
            }
            return summary, await ops_cmds.consumer_report(js)
        finally:
            await nc.close()

    try:
        streams, consumers = asyncio.run(collect())
        return {"url": url, "reachable": True, "streams": streams, "consumers": consumers}
    except Exception as e:  # noqa: BLE001 - status reports it instead of failing
        return {"url": url, "reachable": False, "error": str(e) or type(e).__name__}


MaxLagOpt = Annotated[int, typer.Option("--max-lag", help="消费者最多可落后的事件数，超过则检查不通过")]
MaxAgeOpt = Annotated[float, typer.Option("--max-outbox-age", help="发件箱最早未发布事件最多可等待的秒数")]


@app.command()
def status(
    as_json: JsonOpt = False, max_lag: MaxLagOpt = ops_cmds.MAX_LAG, max_outbox_age: MaxAgeOpt = ops_cmds.MAX_OUTBOX_AGE
) -> None:
    """各服务的健康状态与版本、NATS 流、消费者积压和发件箱积压；超过阈值时退出码 1，服务不可用时 3。"""
    from importlib.metadata import version

    settings = Settings()
    cfg = stack_config(settings)
    pids = running_pids(cfg)
    layout = Layout.load(cfg.data_dir)
    if layout is not None:  # `up --cluster`: the balanced targets and every node and replica
        settings = Settings(
            **{k.removeprefix("BJSV_").lower() if k.startswith("BJSV_") else k: v for k, v in layout.env().items()}
        )
    services = {}
    for name in SERVICES:
        target = settings.target(name)
        services[name] = {
            "target": target,
            "health": health_status(target),
            "pid": pids.get(name),
        }
    report = {"version": version("bjsv"), "services": services, "nats": _nats_summary(settings.nats_url)}
    if layout is not None:
        report["cluster"] = cluster_status(layout)
    report["outbox"] = ops_cmds.backlog_report(settings)
    consumers = report["nats"].get("consumers", [])
    report["problems"] = ops_cmds.problems(report["outbox"], consumers, max_lag=max_lag, max_age=max_outbox_age)
    if as_json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        table = Table(title=f"督导平台 {report['version']}")
        for col in ("服务", "地址", "健康", "进程"):
            table.add_column(col)
        for name, s in services.items():
            table.add_row(name, s["target"], s["health"], str(s["pid"] or "-"))
        console.print(table)
        if layout is not None:
            _print_cluster(report["cluster"])
        nats_info = report["nats"]
        if nats_info["reachable"]:
            st = Table(title=f"NATS {nats_info['url']}")
            for col in ("流", "消息数", "消费者"):
                st.add_column(col)
            for sname, s in sorted(nats_info["streams"].items()):
                st.add_row(sname, str(s["messages"]), str(s["consumers"]))
            console.print(st)
            _print_consumers(consumers)
        else:
            console.print(f"NATS {nats_info['url']} 无法连接：{nats_info['error']}")
        _print_outbox(report["outbox"])
        for problem in report["problems"]:
            err.print(f"[red]{problem}[/red]")
    if any(s["health"] != "SERVING" for s in services.values()):
        raise typer.Exit(3)
    if report["problems"]:
        raise typer.Exit(1)


def _print_consumers(consumers: list[dict]) -> None:
    table = Table(title="消费者")
    for col in ("流", "消费者", "未投递（积压）", "待确认"):
        table.add_column(col)
    for c in consumers:
        table.add_row(c["stream"], c["durable"], str(c["lag"]), str(c["ack_pending"]))
    console.print(table)


def _print_outbox(backlog: dict[str, dict]) -> None:
    table = Table(title="发件箱")
    for col in ("服务", "未发布", "最早等待（秒）", "已搁置"):
        table.add_column(col)
    for name, b in backlog.items():
        if "error" in b:
            table.add_row(name, "-", "-", b["error"])
        else:
            table.add_row(name, str(b["backlog"]), f"{b['oldest_age']:.0f}", str(b["parked"]))
    console.print(table)


ServiceArg = Annotated[str, typer.Argument(help="服务名称：registry | rules | documents | notify")]


def _service_of_running_stack(service: str) -> StackConfig:
    if service not in SERVICES:
        err.print(f"[red]未知服务：{service}（可选：{' | '.join(SERVICES)}）[/red]")
        raise typer.Exit(2)
    cfg = stack_config(Settings())
    if cfg.external_nats_url is None and "nats" not in running_pids(cfg):
        err.print("[red]系统未在运行（没有内置 NATS）：先执行 supervisionctl up[/red]")
        raise typer.Exit(2)
    return cfg


@app.command()
def stop(service: ServiceArg) -> None:
    """停止正在运行的系统中的一个服务（SIGTERM：处理完进行中的调用并清空发件箱后退出）。"""
    cfg = _service_of_running_stack(service)
    result = stop_pids(cfg, names=(service,))
    if not result:
        console.print(f"{service} 未在运行。")
        return
    console.print(f"{service}: {'已停止' if result[service] == 'stopped' else '已强制结束'}")


@app.command()
def start(
    service: ServiceArg, timeout: Annotated[float, typer.Option(help="等待进入 SERVING 状态的最长秒数")] = 60.0
) -> None:
    """在正在运行的系统中启动一个服务（在后台运行），等待其进入 SERVING 状态。"""
    cfg = _service_of_running_stack(service)
    if service in running_pids(cfg):
        err.print(f"[red]{service} 已在运行：要重启请执行 supervisionctl restart {service}[/red]")
        raise typer.Exit(2)
    stack = Stack(cfg, services=(service,))
    stack.start_service(service, detach=True)
    try:
        stack.wait_serving(timeout=timeout)
    except StackError as e:
        err.print(f"[red]启动失败：{e}[/red]")
        raise typer.Exit(1) from None
    console.print(f"{service}: 已启动（{cfg.target(service)}，进程 {stack.procs[service].pid}）")


@app.command()
def restart(
    service: ServiceArg, timeout: Annotated[float, typer.Option(help="等待进入 SERVING 状态的最长秒数")] = 60.0
) -> None:
    """重启正在运行的系统中的一个服务（先停止，再启动并等待 SERVING）。"""
    stop(service)
    start(service, timeout=timeout)


@app.command()
def logs(
    service: Annotated[
        str | None, typer.Argument(help="服务名称：registry | rules | documents | notify | nats（不填则显示全部）")
    ] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="持续显示新增日志")] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", help="显示最后多少行")] = 50,
) -> None:
    """显示服务日志（默认全部服务的最后 50 行）。"""
    cfg = stack_config(Settings())
    names = [service] if service else [*SERVICES, "nats"]
    files = [cfg.log_dir / f"{n}.log" for n in names if (cfg.log_dir / f"{n}.log").exists()]
    if not files:
        err.print(f"没有日志：{cfg.log_dir}")
        raise typer.Exit(1)
    os.execvp("tail", ["tail", f"-n{lines}", *(["-F"] if follow else []), *map(str, files)])


def _build_service(name: str):
    import asyncio

    module = importlib.import_module(f"services.{name}.__main__")

    async def build():  # some adapters (gRPC aio channels) want a running loop
        return module.build()

    return asyncio.run(build())


@app.command()
def migrate() -> None:
    """执行各服务的数据库迁移（alembic upgrade head）；可重复执行。"""
    from common.db import StartupError

    for name in SERVICES:
        svc = _build_service(name)
        if svc.database is None:
            continue
        try:
            svc.database.migrate()
        except StartupError as e:
            err.print(f"[red]{name}: {e}[/red]")
            raise typer.Exit(2) from None
        finally:
            svc.database.dispose()
        console.print(f"{name}: 数据库已是最新（{svc.database.url.split('@')[-1]}）")


@app.command()
def doctor(as_json: JsonOpt = False) -> None:
    """检查本机环境（Python、字体、数据库、NATS、端口），并说明每个问题的解决办法。"""
    from supervisionctl.doctor import run_checks

    checks = run_checks(Settings())
    if as_json:
        print(json.dumps([{**c.__dict__, "fix": "" if c.ok else c.fix} for c in checks], ensure_ascii=False, indent=2))
    else:
        table = Table(title="环境检查")
        for col in ("检查项", "结果", "说明", "解决办法"):
            table.add_column(col)
        for c in checks:
            verdict = "[green]通过[/green]" if c.ok else "[red]未通过[/red]"
            table.add_row(c.name, verdict, c.detail, "" if c.ok else c.fix)
        console.print(table)
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


@app.command()
def seed(demo: Annotated[bool, typer.Option("--demo", help="另加示例评价机构和督导员")] = False):
    """写入市鉴定管理中心和 17 个区鉴定管理机构（附件1 表3）；--demo 另加示例评价机构和督导员。"""
    registry_cmds.seed(demo=demo)
