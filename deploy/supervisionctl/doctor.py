"""`supervisionctl doctor`: checks of this machine, each with a one-line fix."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from common.config import SERVICES, Settings
from supervisionctl.natsd import nats_server_binary, port_open
from supervisionctl.stack import NATS_PORT, StackConfig, running_pids

CJK_FONT_DEFAULT = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _bootstrap():
    path = Path(__file__).resolve().parent.parent / "bootstrap.py"
    spec = importlib.util.spec_from_file_location("bjsv_bootstrap", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_checks(settings: Settings) -> list[Check]:
    checks: list[Check] = []
    ok = sys.version_info >= (3, 11)
    checks.append(Check("Python", ok, sys.version.split()[0], "" if ok else "install Python 3.11 or newer"))

    missing = [
        m
        for m in ("grpc", "durable.lang", "reportlab", "docxtpl", "nats", "sqlalchemy", "chinese_calendar")
        if importlib.util.find_spec(m.split(".")[0]) is None
    ]
    checks.append(
        Check(
            "packages",
            not missing,
            "all importable" if not missing else f"missing {missing}",
            "python3 deploy/bootstrap.py install",
        )
    )

    boot = _bootstrap()
    stamp = boot.GEN / ".stamp"
    fresh = stamp.exists() and stamp.read_text() == boot.proto_digest()
    checks.append(
        Check(
            "protobuf stubs",
            fresh,
            "up to date" if fresh else "missing or older than proto/",
            "python3 deploy/bootstrap.py gen",
        )
    )

    font = os.environ.get("BJSV_CJK_FONT", CJK_FONT_DEFAULT)
    checks.append(
        Check(
            "CJK font (黑体)",
            Path(font).exists(),
            font,
            "apt-get install fonts-wqy-zenhei, or set BJSV_CJK_FONT to a TrueType 黑体 font",
        )
    )

    if settings.database_url:
        url = urlparse(settings.database_url.replace("+psycopg", ""))
        host, port = url.hostname or "127.0.0.1", url.port or 5432
        reachable = port_open(host, port, timeout=1)
        checks.append(
            Check(
                "database",
                reachable,
                f"PostgreSQL {host}:{port}",
                "" if reachable else "start PostgreSQL or fix DATABASE_URL (unset it for SQLite)",
            )
        )
    else:
        data = settings.data_dir.resolve()
        try:
            data.mkdir(parents=True, exist_ok=True)
            writable = os.access(data, os.W_OK)
        except OSError:
            writable = False
        checks.append(
            Check(
                "database",
                writable,
                f"SQLite files under {data}",
                "" if writable else "set BJSV_DATA_DIR to a writable folder",
            )
        )

    cfg = StackConfig(
        data_dir=settings.data_dir.resolve(), host=settings.bind_host, ports={n: settings.port(n) for n in SERVICES}
    )
    ours = running_pids(cfg)
    if os.environ.get("BJSV_NATS_URL"):
        url = urlparse(settings.nats_servers()[0])
        reachable = port_open(url.hostname or "127.0.0.1", url.port or 4222, timeout=1)
        checks.append(
            Check("NATS", reachable, settings.nats_url, "" if reachable else "start NATS or fix BJSV_NATS_URL")
        )
    else:
        try:
            binary = nats_server_binary()
            checks.append(Check("nats-server", True, binary))
        except FileNotFoundError as e:
            checks.append(Check("nats-server", False, str(e), "python3 deploy/bootstrap.py install"))
        free = "nats" in ours or not port_open(settings.bind_host, NATS_PORT)
        checks.append(
            Check(
                f"port {NATS_PORT} (embedded NATS)",
                free,
                "free" if free else "in use",
                "" if free else f"stop what listens on {NATS_PORT} (ss -ltnp)",
            )
        )
    for name in SERVICES:
        port = settings.port(name)
        free = name in ours or not port_open(settings.bind_host, port)
        checks.append(
            Check(
                f"port {port} ({name})",
                free,
                "free" if free else "in use by another program",
                "" if free else f"stop it (ss -ltnp | grep {port}) or set BJSV_{name.upper()}_PORT",
            )
        )
    return checks
