"""`supervisionctl seed --demo` on a fresh stack, then a dispatch of demo supervisors through the public API:
the demo supervisors carry complete 第九条 attestations and a passed 第十条 training dated before their term, so
the rules service's team check accepts them (issue #14)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import wf_helpers as h
from wf_helpers import workflow_env

from bjsv.registry.v1 import registry_pb2 as rpb
from bjsv.registry.v1 import supervision_pb2 as spb
from common.clock import SHANGHAI
from supervisionctl.natsd import free_port
from supervisionctl.stack import Stack, StackConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fresh_stack(tmp_path_factory) -> Iterator[Stack]:
    cfg = StackConfig(
        data_dir=tmp_path_factory.mktemp("demo"),
        nats_port=free_port(),
        ports={name: free_port() for name in ("registry", "rules", "documents", "notify")},
        extra_env=workflow_env(),
    )
    stack = Stack(cfg, services=("rules", "registry"))
    stack.start(timeout=90)
    yield stack
    stack.stop()


def test_seed_demo_supervisors_can_be_dispatched_art9_art10_art20(fresh_stack: Stack):
    ctl = Path(sys.executable).with_name("supervisionctl")
    out = subprocess.run([str(ctl), "seed", "--demo"], env=fresh_stack.config.service_env(), cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "督导员已聘任" in out.stdout + out.stderr, out.stdout + out.stderr
    c = h.Clients(fresh_stack.config.target("registry"))
    try:
        listed = c.registry.ListSupervisors(
            rpb.ListSupervisorsRequest(district_code="08", type=rpb.SUPERVISOR_TYPE_EXTERNAL, page_size=10),
            metadata=h.md(h.HAIDIAN),
        ).supervisors
        assert len(listed) >= 2, listed
        tomorrow = dt.datetime.now(SHANGHAI).date() + dt.timedelta(days=1)
        plan = c.sv.CreatePlan(
            spb.CreatePlanRequest(plan=h.plan_msg("institutions/1100012001", tomorrow, candidates=80),
                                  client_request_id="demo-plan"),
            metadata=h.md(h.HAIDIAN),
        ).plan  # fmt: skip
        d = c.sv.CreateDispatch(
            spb.CreateDispatchRequest(
                dispatch=spb.Dispatch(plan=plan.name, dispatching_agency="agencies/08",
                                      form=spb.SUPERVISION_FORM_ON_SITE),
                selection=spb.TEAM_SELECTION_MANUAL, supervisors=[s.name for s in listed[:2]],
                client_request_id="demo-dispatch",
            ),
            metadata=h.md(h.HAIDIAN),
        ).dispatch  # fmt: skip
        assert [m.supervisor for m in d.members] == [s.name for s in listed[:2]]
        assert all(m.badge_code for m in d.members)
    finally:
        c.close()
