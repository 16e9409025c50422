"""`supervisionctl doctor`: checks of this machine, each with a one-line fix."""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from common.config import SERVICES, Settings
from services.documents.config import DocumentsSettings
from supervisionctl.natsd import nats_server_binary, port_open
from supervisionctl.stack import StackConfig, running_pids

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
    return [Check("Python", ok, sys.version.split()[0], "install Python 3.11 or newer")]


def _packages() -> list[Check]:
    modules = ("grpc", "durable", "reportlab", "docxtpl", "nats", "sqlalchemy", "chinese_calendar")
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    detail = f"missing {missing}" if missing else "all importable"
    boot = _bootstrap()
    stamp = boot.GEN / ".stamp"
    fresh = stamp.exists() and stamp.read_text() == boot.proto_digest()
    return [
        Check("packages", not missing, detail, "python3 deploy/bootstrap.py install"),
        Check("protobuf stubs", fresh, "up to date" if fresh else "missing or older than proto/",
              "python3 deploy/bootstrap.py gen"),
    ]


def _fonts() -> list[Check]:
    docs = DocumentsSettings()
    fix = "apt-get install fonts-wqy-zenhei fonts-dejavu-core, or set BJSV_DOCUMENTS_FONT_CJK / _SYMBOL"
    return [
        Check("CJK font (黑体)", Path(docs.documents_font_cjk).exists(), docs.documents_font_cjk, fix),
        Check("symbol font (☑)", Path(docs.documents_font_symbol).exists(), docs.documents_font_symbol, fix),
    ]


def _database(settings: Settings) -> list[Check]:
    if settings.database_url:
        url = urlparse(settings.database_url)
        host, port = url.hostname or "127.0.0.1", url.port or 5432
        ok = port_open(host, port, timeout=1)
        return [Check("database", ok, f"PostgreSQL {host}:{port}",
                      "start PostgreSQL or fix DATABASE_URL (unset it for the embedded SQLite)")]
    data = settings.data_dir.resolve()
    try:
        data.mkdir(parents=True, exist_ok=True)
        ok = os.access(data, os.W_OK)
    except OSError:
        ok = False
    return [Check("database", ok, f"SQLite files under {data}", "set BJSV_DATA_DIR to a writable folder")]


def _nats_and_ports(settings: Settings) -> list[Check]:
    checks: list[Check] = []
    ours = running_pids(StackConfig(data_dir=settings.data_dir.resolve()))
    nats_url = urlparse(settings.nats_servers()[0])
    nats_port = nats_url.port or 4222
    if not settings.nats_embedded:
        ok = port_open(nats_url.hostname or "127.0.0.1", nats_port, timeout=1)
        checks.append(Check("NATS", ok, settings.nats_url, "start NATS or fix BJSV_NATS_URL"))
    else:
        try:
            checks.append(Check("nats-server", True, nats_server_binary()))
        except FileNotFoundError as e:
            checks.append(Check("nats-server", False, str(e), "python3 deploy/bootstrap.py install"))
        free = "nats" in ours or not port_open(settings.bind_host, nats_port)
        checks.append(Check(f"port {nats_port} (embedded NATS)", free, "free" if free else "in use",
                            f"stop what listens on {nats_port} (ss -ltnp) or set BJSV_NATS_URL"))
    for name in SERVICES:
        port = settings.port(name)
        free = name in ours or not port_open(settings.bind_host, port)
        checks.append(Check(f"port {port} ({name})", free, "free" if free else "in use by another program",
                            f"stop it (ss -ltnp | grep {port}) or set BJSV_{name.upper()}_PORT"))
    return checks


def run_checks(settings: Settings) -> list[Check]:
    return [*_python(), *_packages(), *_fonts(), *_database(settings), *_nats_and_ports(settings)]
