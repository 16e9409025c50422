"""`supervisionctl doctor`: checks of this machine, each with a one-line fix."""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import stat
import sys
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlparse

import grpc
import sqlalchemy as sa

from bjsv.notify.v1 import notify_pb2, notify_pb2_grpc
from common import clients, pki
from common.auth import issuer_tls
from common.auth.config import AuthSettings
from common.auth.credentials import ADMIN_FILE, admin_token
from common.auth.tokens import LEEWAY_SECONDS
from common.config import SERVICES, Settings
from common.db import StartupError
from services.documents.config import DocumentsSettings
from supervisionctl.natsd import nats_server_binary, port_open
from supervisionctl.stack import StackConfig, running_pids

MAX_SKEW = 2.0  # seconds
BOOTSTRAP = Path(__file__).resolve().parent.parent / "bootstrap.py"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""  # shown only when the check fails


def _bootstrap():
    spec = importlib.util.spec_from_file_location("bjsv_bootstrap", BOOTSTRAP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _python() -> list[Check]:
    ok = sys.version_info >= (3, 11)
    return [Check("Python", ok, sys.version.split()[0], "安装 Python 3.11 或更高版本")]


def _packages() -> list[Check]:
    modules = ("grpc", "durable", "reportlab", "docxtpl", "nats", "sqlalchemy", "chinese_calendar")
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    detail = f"缺少 {missing}" if missing else "均可导入"
    boot = _bootstrap()
    stamp = boot.GEN / ".stamp"
    fresh = stamp.exists() and stamp.read_text() == boot.proto_digest()
    return [
        Check("依赖包", not missing, detail, "执行 python3 deploy/bootstrap.py install"),
        Check(
            "protobuf 生成代码",
            fresh,
            "已是最新" if fresh else "缺失或旧于 proto/",
            "执行 python3 deploy/bootstrap.py gen",
        ),
    ]


def _fonts() -> list[Check]:
    docs = DocumentsSettings()
    fix = "执行 apt-get install fonts-wqy-zenhei fonts-dejavu-core，或设置 BJSV_DOCUMENTS_FONT_CJK / _SYMBOL"
    return [
        Check("中文字体（黑体）", Path(docs.documents_font_cjk).exists(), docs.documents_font_cjk, fix),
        Check("符号字体（☑）", Path(docs.documents_font_symbol).exists(), docs.documents_font_symbol, fix),
    ]


def _database(settings: Settings) -> list[Check]:
    if settings.database_url:
        url = urlparse(settings.database_url)
        host, port = url.hostname or "127.0.0.1", url.port or 5432
        ok = port_open(host, port, timeout=1)
        return [
            Check(
                "数据库",
                ok,
                f"PostgreSQL {host}:{port}",
                "启动 PostgreSQL 或更正 DATABASE_URL（不设置则使用内置 SQLite）",
            )
        ]
    data = settings.data_dir.resolve()
    try:
        data.mkdir(parents=True, exist_ok=True)
        ok = os.access(data, os.W_OK)
    except OSError:
        ok = False
    return [Check("数据库", ok, f"SQLite 文件位于 {data}", "将 BJSV_DATA_DIR 设为可写目录")]


def _nats_and_ports(settings: Settings) -> list[Check]:
    checks: list[Check] = []
    ours = running_pids(StackConfig(data_dir=settings.data_dir.resolve()))
    nats_url = urlparse(settings.nats_servers()[0])
    nats_port = nats_url.port or 4222
    if not settings.nats_embedded:
        ok = port_open(nats_url.hostname or "127.0.0.1", nats_port, timeout=1)
        checks.append(Check("NATS", ok, settings.nats_url, "启动 NATS 或更正 BJSV_NATS_URL"))
    else:
        try:
            checks.append(Check("nats-server", True, nats_server_binary()))
        except FileNotFoundError as e:
            checks.append(Check("nats-server", False, str(e), "执行 python3 deploy/bootstrap.py install"))
        free = "nats" in ours or not port_open(settings.bind_host, nats_port)
        checks.append(
            Check(
                f"端口 {nats_port}（内置 NATS）",
                free,
                "空闲" if free else "已被占用",
                f"停止占用 {nats_port} 的程序（ss -ltnp）或设置 BJSV_NATS_URL",
            )
        )
    for name in SERVICES:
        port = settings.port(name)
        free = name in ours or not port_open(settings.bind_host, port)
        checks.append(
            Check(
                f"端口 {port}（{name}）",
                free,
                "空闲" if free else "已被其他程序占用",
                f"停止该程序（ss -ltnp | grep {port}）或设置 BJSV_{name.upper()}_PORT",
            )
        )
    return checks


def _operations(settings: Settings) -> list[Check]:
    """Outbox backlog, parked events and consumer lag over the thresholds of `status`."""
    from supervisionctl import ops_cmds

    try:
        consumers = ops_cmds.nats_consumers(settings.nats_servers()[0])
    except Exception:  # noqa: BLE001 - NATS not running: the checks above say so; nothing to measure here
        consumers = []
    found = ops_cmds.problems(
        ops_cmds.backlog_report(settings), consumers, max_lag=ops_cmds.MAX_LAG, max_age=ops_cmds.MAX_OUTBOX_AGE
    )
    detail = "；".join(found) if found else "发件箱无积压、无搁置事件，消费者未落后"
    fix = "查看 supervisionctl status 和 supervisionctl outbox list；排除原因后 supervisionctl outbox retry"
    return [Check("发件箱与消费者", not found, detail, fix)]


def _identity() -> list[Check]:
    """The issuer: local admin credential private (embedded), or the external issuer reachable with a clock
    within the tokens' leeway of ours (exp/nbf are compared across the two clocks)."""
    auth = AuthSettings()
    if auth.embedded:
        admin = auth.identity_path / ADMIN_FILE
        private = not admin.exists() or stat.S_IMODE(admin.stat().st_mode) == 0o600
        detail = f"{admin}（{'0600' if admin.exists() else '首次 up 时生成'}）"
        return [Check("本地管理员凭据", private, detail, f"chmod 600 {admin}")]
    if urlparse(auth.issuer).scheme != "https":  # tokens and client secrets would cross the network in clear
        return [Check("身份认证服务", False, f"{auth.issuer}：明文 HTTP", "BJSV_OIDC_ISSUER 改用 https:// 地址")]
    try:
        with issuer_tls.urlopen(auth, f"{auth.issuer}/.well-known/openid-configuration", 3) as resp:
            skew = abs(parsedate_to_datetime(resp.headers["Date"]).timestamp() - time.time())
    except (OSError, KeyError, TypeError, ValueError) as e:
        fix = "检查 BJSV_OIDC_ISSUER 与网络；证书由内部 CA 签发时设置 BJSV_OIDC_CA_FILE"
        return [Check("身份认证服务", False, f"{auth.issuer}：{e}", fix)]
    return [
        Check("身份认证服务", True, auth.issuer),
        Check("时钟偏差", skew <= LEEWAY_SECONDS, f"与身份认证服务相差 {skew:.0f} 秒", "校准本机时钟（NTP）"),
    ]


def _tls(settings: Settings) -> list[Check]:
    """Plaintext mode, and the expiry of the CA and every component certificate (warned WARN_DAYS ahead)."""
    if not settings.tls_enabled:
        return [
            Check(
                "传输加密（TLS）",
                False,
                "BJSV_TLS=off：gRPC、NATS 与内置身份认证服务（HTTP）均为明文传输，仅限开发环境",
                "删除 BJSV_TLS=off 设置（默认开启 TLS）",
            )
        ]
    folder = pki.root(settings)
    certs = sorted(folder.glob("*.crt"))
    if not certs:
        return [Check("证书", True, f"{folder} 尚无证书，首次 supervisionctl up 时生成")]
    now = dt.datetime.now(dt.UTC)
    checks = []
    for path in certs:
        end = pki.not_after(path)
        days = (end - now).days
        fix = "执行 supervisionctl certs init --new-ca" if path.stem == "ca" else "执行 supervisionctl certs rotate"
        detail = f"{end:%Y-%m-%d} 到期（剩 {days} 天）" if end > now else f"已于 {end:%Y-%m-%d} 过期"
        checks.append(Check(f"证书 {path.stem}", end - now > dt.timedelta(days=pki.WARN_DAYS), detail, fix))
    return checks


def _clock_skew(settings: Settings) -> list[Check]:
    """This host's clock against the database server's (PostgreSQL) and the running notify service's: deadlines
    (第二十三条) and certificate validity depend on them agreeing."""
    fix = "同步系统时钟（timedatectl set-ntp true 或 chrony）"
    references: list[tuple[str, dt.datetime]] = []
    if settings.database_url:
        try:
            engine = sa.create_engine(settings.database_url)
            with engine.connect() as conn:
                references.append(("PostgreSQL", conn.execute(sa.text("SELECT now()")).scalar_one()))
            engine.dispose()
        except sa.exc.SQLAlchemyError:
            pass  # reported by the database check
    try:
        token = admin_token(AuthSettings(), "operators/doctor", ["operator"])  # GetClock needs a caller
        with clients.sync_channel(settings.target("notify"), token=token) as ch:
            reply = notify_pb2_grpc.NotifyServiceStub(ch).GetClock(notify_pb2.GetClockRequest(), timeout=2)
        if reply.mode == "real":  # a test clock (fixed/offset) is deliberately off
            references.append(("notify 服务", reply.now.ToDatetime(dt.UTC)))
    except (grpc.RpcError, StartupError, OSError, ValueError):
        pass  # not running (or no local admin credential): nothing to compare with
    checks = []
    for name, then in references:
        skew = abs((dt.datetime.now(dt.UTC) - then).total_seconds())
        checks.append(Check(f"时钟偏差（{name}）", skew <= MAX_SKEW, f"{skew:.1f} 秒", fix))
    return checks or [Check("时钟偏差", True, "无可比较的时钟（服务未运行且未使用 PostgreSQL）")]


def run_checks(settings: Settings) -> list[Check]:
    return [
        *_python(),
        *_packages(),
        *_fonts(),
        *_database(settings),
        *_nats_and_ports(settings),
        *_operations(settings),
        *_identity(),
        *_tls(settings),
        *_clock_skew(settings),
    ]
