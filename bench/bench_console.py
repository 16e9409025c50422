#!/usr/bin/env python3
"""Console bench: page latency with 20 concurrent users, each page doing its real gRPC calls (issue #15).

    .venv/bin/python bench/bench_console.py                  # 20 users for 30 s
    .venv/bin/python bench/bench_console.py --users 20 --seconds 60 --json

What it does: starts the embedded stack (nats-server, the four services, the console) on free loopback ports
in a temporary folder, as deployed: mutual TLS between the console and the services with a local CA, the
console on HTTPS, every call with the user's bearer token from the embedded issuer (started for this run
unless BJSV_IDENTITY_PORT/_DIR name one). It seeds an institution, supervisors and `--plans` plans with
dispatches through the public gRPC API around the real today (Asia/Shanghai): reviews 25 days ago (overdue
records and feedback, three open cases), today and in the coming week; the workflow's test clock is on only
while seeding (to dispatch the past reviews before they happened), then the registry and notify restart
without it and answer on the real clock, as deployed. It creates issuer accounts and logs in (password
grant) `--users` browser-less users (district officials, supervisors and the institution, mixed as in daily
work) and lets each one walk its pages (the next request `--think-ms` after the page arrived: 1 s, faster
than a person reads a page) for `--seconds`. Reports p50/p95/p99 per page and overall, and the load average
at the end (the machine is shared); target: overall p95 ≤ 300 ms. Then the same users run a closed loop (no
pause) for `--saturation-seconds`: what the machine serves at most, and the latency there (reported, no
target: 20 requests always in flight are not 20 people). The same run measures the floor: a static file
served by the same console.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import signal
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen"), str(ROOT / "deploy"), str(ROOT / "tests" / "workflow")]

import wf_helpers as h  # noqa: E402 - seeding through the public API, shared with the workflow tests

from bjsv.registry.v1 import supervision_pb2 as spb  # noqa: E402
from common import pki  # noqa: E402
from common.clock import SHANGHAI, Clock  # noqa: E402
from common.workdays import ENV_CALENDAR_FILE, WorkdayCalendar  # noqa: E402
from services.identity.config import IdentitySettings  # noqa: E402
from services.identity.issuer import Issuer  # noqa: E402
from supervisionctl.natsd import free_port  # noqa: E402
from supervisionctl.stack import Stack, StackConfig  # noqa: E402
from tests import auth_support  # noqa: E402

PASSWORD = "Bench-2026-mima"
INSTITUTION = "institutions/1100012001"
TARGET_P95_MS = 300.0
PAGES = {
    "district-agency": ["/dashboard", "/plans", "/{plan}", "/cases", "/supervisors", "/rules", "/inbox"],
    # Not /my/badge nor the institution's /documents: policy.yaml grants neither a supervisor ListBadges nor
    # an institution ListDocuments, so those pages show the refusal (README, console: known gaps).
    "supervisor": ["/my/dispatches", "/inbox"],
    "institution": ["/institution/plans", "/inbox"],
}


def percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))] if s else float("nan")


# Where each plan's records review falls, relative to the real today: every fifth plan was reviewed 25 days ago
# (its record and feedback are overdue, 第二十三条), every fifth is reviewed today (the dashboard's list), the rest in
# the coming week. Close to today so the due dates stay in the years the working-day calendar covers.
REVIEW_DAY = (-25, 0, 2, 4, 6)
DUE_WITHIN_DAYS = 15  # five working days after a review, a holiday week included (D5)
CASES = 3  # open cases on supervisors of the overdue plans (第二十七条)


def seed(stack: Stack, plans: int) -> tuple[list[str], list[str]]:
    """Plans with a dispatched records-review team each, around the service clock's real today (Asia/Shanghai);
    returns (plan names, supervisor names). The workflow's test clock stands 30 days back while seeding, so the
    past reviews could be dispatched before they happened; `run_as_deployed` then drops the test clock."""
    today = Clock().today()
    last_due = today + dt.timedelta(days=max(REVIEW_DAY) + DUE_WITHIN_DAYS)
    if not WorkdayCalendar.from_file(os.environ.get(ENV_CALENDAR_FILE)).covers(last_due.year):
        raise SystemExit(f"The working-day calendar does not cover {last_due.year}, where seeded due dates fall: "
                         f"name a calendar file with {ENV_CALENDAR_FILE} (README, D5).")  # fmt: skip
    c = h.Clients(stack.config.target("registry"))
    h.institution(c, INSTITUTION.split("/")[1], "北京某某电力技术有限公司", "08")
    sups = [h.supervisor(c, f"督导{i}")[0] for i in range(6)]
    c.set_clock(dt.datetime.combine(today - dt.timedelta(days=30), dt.time(9), tzinfo=SHANGHAI))
    names, past = [], []
    for i in range(plans):
        review = today + dt.timedelta(days=REVIEW_DAY[i % len(REVIEW_DAY)])
        plan = c.sv.CreatePlan(spb.CreatePlanRequest(plan=h.plan_msg(INSTITUTION, review - dt.timedelta(days=1),
                               title=f"{review.year}年第{i + 1}期电工职业技能等级认定"),
                               client_request_id=f"bench-plan-{i}"), metadata=h.md(h.HAIDIAN)).plan  # fmt: skip
        d = spb.Dispatch(plan=plan.name, dispatching_agency="agencies/08", form=spb.SUPERVISION_FORM_RECORDS_REVIEW,
                         supervision_start_time=h.at(review, 9), supervision_end_time=h.at(review, 17))  # fmt: skip
        team = c.sv.CreateDispatch(spb.CreateDispatchRequest(dispatch=d, selection=spb.TEAM_SELECTION_PROPOSED,
                                   seed=f"bench-{i}", team_size=2, client_request_id=f"bench-d-{i}"),
                                   metadata=h.md(h.HAIDIAN)).dispatch.members  # fmt: skip
        names.append(plan.name)
        if review < today:
            past.append((plan.name, team[0].supervisor))
    for n, (plan, sup) in enumerate(past[:CASES]):
        case = spb.PenaltyCase(subject_kind=spb.CASE_SUBJECT_KIND_SUPERVISOR, subject=sup, plan=plan,
                               triggers=[spb.CASE_TRIGGER_SUPERVISOR_DUTY_FAILURE], description="擅自离场")  # fmt: skip
        c.sv.OpenCase(spb.OpenCaseRequest(penalty_case=case, client_request_id=f"bench-case-{n}"),
                      metadata=h.md(h.HAIDIAN))  # fmt: skip
    c.sv.SetSupervisionClock(spb.SetSupervisionClockRequest(reset=True), metadata=h.md(h.OPERATOR))  # notify follows
    c.close()
    return names, sups


def run_as_deployed(stack: Stack) -> None:
    """Restart the services that honour the test clock without it: they answer on the real clock, as deployed,
    and no longer read the stored clock on every call."""
    stack.config.extra_env.pop("BJSV_SUPERVISION_TEST_CLOCK")
    for name in ("registry", "notify"):
        proc = stack.procs[name]
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        stack.restart_service(name, timeout=60)


def create_accounts(sups: list[str]) -> None:
    """Person accounts at the issuer; a supervisor's org is the person (supervisors/N)."""
    users = {"official": ("agencies/08", "district-agency"), "institution": (INSTITUTION, "institution")}
    users |= {f"sup{i}": (s, "supervisor") for i, s in enumerate(sups)}
    issuer = Issuer(IdentitySettings())
    for name, (org, role) in users.items():
        with issuer.accounts.change() as accounts:
            accounts.pop(name, None)
        issuer.create_account(name, "person", org, [role], PASSWORD)


async def user(
    base: str, ca: str, login: str, role: str, plans: list[str], until: float, think: float, out: dict,
    logins: asyncio.Semaphore,
) -> None:  # fmt: skip
    async with httpx.AsyncClient(base_url=base, verify=ca, timeout=30) as client:
        # Logins are not measured; two at a time, as 20 argon2id checks at once starve the issuer for seconds.
        async with logins:
            csrf = re.search(r'name="csrf" value="([^"]+)"', (await client.get("/login")).text).group(1)
            resp = await client.post("/login", data={"csrf": csrf, "username": login, "password": PASSWORD})
        if resp.status_code != 303:  # a refused login would otherwise bench the login page
            raise RuntimeError(f"{login}: login refused (HTTP {resp.status_code})")
        for page in PAGES[role]:  # warm-up: templates compiled, channels connected, reference data read
            (await client.get(page.format(plan=plans[0]))).raise_for_status()
        n = 0
        while time.monotonic() < until:
            page = PAGES[role][n % len(PAGES[role])]
            path = page.format(plan=plans[n % len(plans)])
            started = time.perf_counter()
            resp = await client.get(path)
            elapsed = (time.perf_counter() - started) * 1000
            if resp.status_code != 200:
                raise RuntimeError(f"{login} {path}: HTTP {resp.status_code}")
            out[page].append(elapsed)
            n += 1
            await asyncio.sleep(think)


async def floor(base: str, ca: str, seconds: float) -> list[float]:
    out = []
    async with httpx.AsyncClient(base_url=base, verify=ca) as client:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            started = time.perf_counter()
            (await client.get("/static/console.css")).raise_for_status()
            out.append((time.perf_counter() - started) * 1000)
    return out


async def drive(base: str, ca: str, args: argparse.Namespace, plans: list[str], sups: list[str]) -> dict:
    users, seconds, think = args.users, args.seconds, args.think_ms / 1000
    roles = ["district-agency"] * (users - users // 4 - users // 10) + ["supervisor"] * (users // 4)
    roles += ["institution"] * (users // 10)
    logins = {"district-agency": lambda i: "official", "supervisor": lambda i: f"sup{i % len(sups)}",
              "institution": lambda i: "institution"}  # fmt: skip
    out: dict[str, list[float]] = defaultdict(list)
    until = time.monotonic() + seconds + 5.0  # the measured window starts after each user's warm-up pass
    gate = asyncio.Semaphore(2)
    await asyncio.gather(
        *(user(base, ca, logins[r](i), r, plans, until, think, out, gate) for i, r in enumerate(roles))
    )
    return out


def report(per_page: dict[str, list[float]], floor_ms: list[float], args: argparse.Namespace) -> dict:
    every = [v for vs in per_page.values() for v in vs]
    result = {
        "users": args.users,
        "think_ms": args.think_ms,
        "seconds": args.seconds,
        "pages_served": len(every),
        "pages_per_second": round(len(every) / args.seconds, 1),
        "overall_ms": {p: round(percentile(every, q), 1) for p, q in (("p50", 50), ("p95", 95), ("p99", 99))},
        "per_page_p95_ms": {page: round(percentile(vs, 95), 1) for page, vs in sorted(per_page.items())},
        "static_file_floor_p95_ms": round(percentile(floor_ms, 95), 1),
        "target_p95_ms": TARGET_P95_MS,
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }
    result["meets_target"] = result["overall_ms"]["p95"] <= TARGET_P95_MS
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--plans", type=int, default=30)
    parser.add_argument("--think-ms", type=float, default=1000.0, help="pause between a user's pages")
    parser.add_argument("--saturation-seconds", type=float, default=30.0, help="then a closed loop (0 = skip)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    auth_support.ensure_issuer()
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        # TLS on as deployed: one CA (the issuer's, made by ensure_issuer, unless BJSV_PKI_DIR named one) for
        # the issuer's HTTPS, the stack and this process's gRPC clients
        os.environ.setdefault("BJSV_PKI_DIR", str(Path(tmp) / "pki"))
        services = ("rules", "registry", "documents", "notify")
        cfg = StackConfig(data_dir=Path(tmp), nats_port=free_port(), ports={s: free_port() for s in services},
                          extra_env=h.workflow_env())  # fmt: skip
        stack = Stack(cfg, services=services)
        stack.start(timeout=120)
        try:
            plans, sups = seed(stack, args.plans)
            run_as_deployed(stack)
            create_accounts(sups)
            cfg.console_port = free_port()
            stack.start_console(timeout=60)
            base, ca = cfg.console_url.rstrip("/"), str(pki.ca_path(cfg.settings()))
            per_page = asyncio.run(drive(base, ca, args, plans, sups))
            result = report(per_page, asyncio.run(floor(base, ca, 3.0)), args)
            if args.saturation_seconds > 0:
                closed = argparse.Namespace(**{**vars(args), "think_ms": 0.0, "seconds": args.saturation_seconds})
                saturated = report(asyncio.run(drive(base, ca, closed, plans, sups)), [0.0], closed)
                result["saturation"] = {k: saturated[k] for k in ("pages_per_second", "overall_ms", "per_page_p95_ms")}
        finally:
            stack.stop()
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print(f"{result['users']} users, {result['pages_served']} pages in {args.seconds:.0f} s "
              f"({result['pages_per_second']}/s)")  # fmt: skip
        print(f"overall p50/p95/p99: {result['overall_ms']['p50']} / {result['overall_ms']['p95']} / "
              f"{result['overall_ms']['p99']} ms (target p95 ≤ {TARGET_P95_MS:.0f} ms: "
              f"{'met' if result['meets_target'] else 'NOT met'})")  # fmt: skip
        for page, p95 in result["per_page_p95_ms"].items():
            print(f"  {page:24} p95 {p95} ms")
        print(f"floor (static file, same console) p95: {result['static_file_floor_p95_ms']} ms")
        if "saturation" in result:
            sat, ms = result["saturation"], result["saturation"]["overall_ms"]
            print(f"closed loop (no pause, no target): {sat['pages_per_second']} pages/s, p50/p95/p99 "
                  f"{ms['p50']} / {ms['p95']} / {ms['p99']} ms")  # fmt: skip
        print(f"load average (1/5/15 min): {' / '.join(map(str, result['load_average_1_5_15']))}")
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
