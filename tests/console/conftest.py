"""The console on the embedded stack: the four services (test clocks on, mutual TLS with the session's CA),
seeded through their public gRPC API, and the console process started exactly as `supervisionctl up` starts
it (HTTPS with pki/console.crt). Its users are person accounts in the session's issuer (tests/conftest.py
`issuer`), each with an organisation and a role; the console logs them in by the password grant.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))  # wf_helpers (shared seeding code)

import wf_helpers as h

from common import pki
from common.clock import SHANGHAI
from services.identity.config import IdentitySettings
from services.identity.issuer import Issuer
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
    ca: str  # the stack's CA (PEM), which the console's HTTPS certificate chains to
    clients: h.Clients
    supervisors: dict[str, str] = field(default_factory=dict)  # "supervisors/N" -> login name
    opened: list[httpx.Client] = field(default_factory=list)

    def set_clock(self, when: dt.datetime) -> None:
        self.clients.set_clock(when)

    def http(self, **options: Any) -> httpx.Client:
        """An HTTPS client of the console, closed before the stack stops: uvicorn waits for every open
        connection before it exits, so a client left open held the stop for its whole 12 s timeout."""
        client = httpx.Client(base_url=self.url, verify=self.ca, **options)
        self.opened.append(client)
        return client


def people(sups: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Login name -> (org, role); a supervisor's org is the person (supervisors/N), as the scope helper reads it."""
    users = {
        "haidian": ("agencies/08", "district-agency"),
        "chaoyang": ("agencies/05", "district-agency"),
        "city": ("agencies/A", "city-centre"),
        "dianli": (INSTITUTION, "institution"),
    }
    return users | {login: (sup, "supervisor") for sup, login in sups.items()}


def create_accounts(users: dict[str, tuple[str, str]]) -> None:
    """Person accounts in the session's issuer, as `supervisionctl auth create` makes them; each console module
    starts a new stack (new supervisor ids), so an account left by an earlier module is replaced."""
    issuer = Issuer(IdentitySettings())
    for name, (org, role) in users.items():
        with issuer.accounts.change() as accounts:
            accounts.pop(name, None)
        issuer.create_account(name, "person", org, [role], PASSWORD)


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
        create_accounts(people(sups))
        cfg.console_port = free_port()
        stack.start_console(timeout=60)
        ca = str(pki.ca_path(cfg.settings()))
        made = Console(stack, cfg.console_url.rstrip("/"), ca, c, sups)
        yield made
        for client in made.opened:
            client.close()
    finally:
        stack.stop()
