"""The console on the embedded stack: the four services (test clocks on), seeded through their public gRPC
API, and the console process started exactly as `supervisionctl up` starts it.

Until identity (#12) is merged the console logs users in from a development accounts file and forwards
their declared organisation and role; the users below become issuer accounts then (PENDING identity).
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from argon2 import PasswordHasher

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))  # wf_helpers (shared seeding code)

import wf_helpers as h

from common.clock import SHANGHAI
from supervisionctl.natsd import free_port
from supervisionctl.stack import Stack, StackConfig

SERVICES = ("rules", "registry", "documents", "notify")
PASSWORD = "Ceshi-2026-mima"
INSTITUTION = "institutions/1100012001"
INSTITUTION_NAME = "北京某某电力技术有限公司"
CHAOYANG_INSTITUTION = "institutions/1100052001"


@dataclass
class Console:
    stack: Stack
    url: str
    clients: h.Clients
    supervisors: dict[str, str] = field(default_factory=dict)  # "supervisors/N" -> login name

    def set_clock(self, when: dt.datetime) -> None:
        self.clients.set_clock(when)


def accounts(sups: dict[str, str]) -> dict[str, dict[str, str]]:
    users = {
        "haidian": {"name": "海淀区鉴定所 张科长", "org": "agencies/08", "role": "district-agency"},
        "chaoyang": {"name": "朝阳区鉴定所 李科长", "org": "agencies/05", "role": "district-agency"},
        "city": {"name": "市鉴定管理中心 刘主任", "org": "agencies/A", "role": "city-centre"},
        "dianli": {"name": "某某电力 李主任", "org": INSTITUTION, "role": "institution"},
    }
    for sup, login in sups.items():
        users[login] = {"name": login, "org": "agencies/08", "role": "supervisor", "sub": sup}
    hasher = PasswordHasher()
    return {u: {**a, "password_hash": hasher.hash(PASSWORD)} for u, a in users.items()}


@pytest.fixture(scope="module")
def console(tmp_path_factory) -> Iterator[Console]:
    data = tmp_path_factory.mktemp("console")
    cfg = StackConfig(
        data_dir=data,
        nats_port=free_port(),
        ports={name: free_port() for name in SERVICES},
        extra_env=h.workflow_env(BJSV_LOG_LEVEL="WARNING"),
    )
    stack = Stack(cfg, services=SERVICES)
    stack.start(timeout=120)
    try:
        c = h.Clients(cfg.target("registry"))
        h.institution(c, INSTITUTION.split("/")[1], INSTITUTION_NAME, "08")
        h.institution(c, CHAOYANG_INSTITUTION.split("/")[1], "北京朝阳某某培训学校", "05")
        sups = {h.supervisor(c, name)[0]: login for name, login in (("张督导", "zhang"), ("王督导", "wang"),
                                                                     ("赵督导", "zhao"))}  # fmt: skip
        c.set_clock(dt.datetime(2026, 11, 30, 9, tzinfo=SHANGHAI))
        path = data / "console-accounts.yaml"
        path.write_text(yaml.safe_dump({"accounts": accounts(sups)}, allow_unicode=True), encoding="utf-8")
        path.chmod(0o600)
        cfg.console_port = free_port()
        cfg.extra_env["BJSV_CONSOLE_DEV_ACCOUNTS"] = str(path)
        stack.start_console(timeout=60)
        yield Console(stack, cfg.console_url.rstrip("/"), c, sups)
    finally:
        stack.stop()
