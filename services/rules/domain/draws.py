"""双随机 draws: ProposeTeam (who supervises) and SampleInspectionTargets (which plans are reviewed).

Reproducible by construction: the pool is sorted by name and a PRNG seeded with sha256(seed) gives every
member a key — independent of the order the pool was sent in — and a draw takes the best keys.
ProposeTeam weights the keys so supervisors with fewer recent dispatches are preferred (weighted sampling
without replacement, Efraimidis–Spirakis: key = ln(u) / w with w = (1 + recent)^-exponent; exponent 0 =
uniform; parameter dispatch.recent_dispatch_exponent).

Legality is checked lazily in key order: the draw walks the ordered pool in chunks and asks the engine
about each member (scope, eligibility for dispatch, recusal) until the team is full, so a pool of
thousands costs a few engine evaluations, and the team is exactly the top-k legal members — the same
result as filtering the whole pool first. Only when the pool is too small is every member evaluated, to
say how many are eligible and why the others were excluded.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
import secrets
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from common.errors import FailedPrecondition, PreconditionViolation
from services.rules.domain import facts as F
from services.rules.domain import model as m
from services.rules.domain.decisions import Decider, Evaluator, Job, Msg, findings_of, fire, member_msgs
from services.rules.domain.ruleset import Catalog, RuleSet


def new_seed() -> str:
    return secrets.token_hex(16)


def _keyed_pool(seed: str, entries: Sequence[tuple[str, int]], exponent: float) -> list[tuple[float, int]]:
    """(key, index) per distinct member name, in name order (unsorted by key).

    The pool is put in name order first and one PRNG seeded with sha256(seed) gives each member its u, so
    the keys depend only on the set of members, the weights and the seed — not on the order sent.
    """
    n = len(entries)
    names = [e[0] for e in entries]
    # a name's first index wins (later duplicates are dropped)
    first = dict(zip(reversed(names), range(n - 1, -1, -1), strict=True))
    idx = [first[name] for name in sorted(first)]
    rnd = random.Random(int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big"))
    rand, log = rnd.random, math.log
    # 1/w = (1 + recent)^exponent, computed once per distinct count
    inverse_weight = {r: (1.0 + max(0, r)) ** exponent for r in {entries[i][1] for i in idx}}
    # Efraimidis–Spirakis with u in (0, 1]: the smallest -ln(u)/w is the best key (u drawn in name order)
    return [(-log(1.0 - rand()) * inverse_weight[entries[i][1]], i) for i in idx]


def order_pool(seed: str, entries: Sequence[tuple[str, int]], exponent: float) -> list[int]:
    """Indexes of (name, recent_dispatch_count) entries, best key first; duplicates of a name dropped."""
    keyed = _keyed_pool(seed, entries, exponent)
    keyed.sort()
    return [i for _, i in keyed]


class DrawOrder:
    """order_pool() computed lazily: all keys are drawn (the PRNG sequence must not change), but only the
    prefix a draw actually walks is put in order (heap pops), not the whole pool. `order[a:b]` and
    `len(order)` give exactly what the eager list would."""

    def __init__(self, seed: str, entries: Sequence[tuple[str, int]], exponent: float) -> None:
        self._heap = _keyed_pool(seed, entries, exponent)
        self._len = len(self._heap)
        heapq.heapify(self._heap)  # (key, index) pairs are distinct, so pops follow the sort order exactly
        self._done: list[int] = []

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, sl: slice) -> list[int]:
        stop = self._len if sl.stop is None else min(sl.stop, self._len)
        heap, done, pop = self._heap, self._done, heapq.heappop
        while len(done) < stop:
            done.append(pop(heap)[1])
        return done[sl]


@dataclass
class TeamDraw:
    team: list[str]
    seed: str
    pool_digest: str
    eligible_count: int
    evaluated_count: int
    exclusions: dict[str, list[str]]  # name -> rule ids
    decision: m.Decision


async def propose_team(
    decider: Decider,
    catalog: Catalog,
    ev: Evaluator,
    *,
    agency: str,
    plan: m.Plan,
    session: m.Session,
    as_of,
    pool: Sequence[tuple[str, int]],
    load: Callable[[int], m.Supervisor],
    team_size: int,
    seed: str,
    pool_digest: str,
    pinned: RuleSet | None = None,
    also_on: Sequence = (),
) -> TeamDraw:
    """`also_on`: further dates the dispatch covers; a member is legal only if legal on `as_of` and on each."""
    rs = pinned if pinned is not None else catalog.in_force(as_of)
    days = [as_of, *sorted(set(also_on) - {as_of})]
    need = team_size or F.recommended_team_size(rs, plan.candidate_count)
    await _refuse_undispatchable(ev, rs, agency, plan, session, as_of, need)
    exponent = float(rs.param("dispatch.recent_dispatch_exponent"))
    order = DrawOrder(seed, pool, exponent)
    legal, exclusions, evaluated = await _draw_members(ev, rs, agency, plan, session, days, order, load, need)
    if len(legal) < need:
        raise _pool_too_small(rs, plan, need, len(order), len(legal), exclusions)

    checks = await decider.team(
        catalog, ev, [m.TeamInput(agency, plan, session, tuple(legal), day) for day in days], pinned=rs
    )
    for c in checks:  # cannot fail when member and team rules agree; never hand out a bad team
        if c.outcome == m.DENY:
            raise AssertionError(f"drawn team fails CheckTeam on {c.as_of}: {[f.rule_id for f in c.findings]}")
    check = checks[0]
    check.kind = m.KIND_TEAM_DRAW
    if len(days) > 1:
        check.derived["also_on_dates"] = ",".join(d.isoformat() for d in days[1:])
    check.derived.update(
        {
            "seed": seed,
            "pool_size": str(len(order)),
            "pool_digest": pool_digest,
            "evaluated_count": str(evaluated),
            "team_size": str(need),
            "recent_dispatch_exponent": repr(exponent),
            "team": ",".join(s.name for s in legal),
        }
    )
    return TeamDraw([s.name for s in legal], seed, pool_digest, len(legal), evaluated, exclusions, check)


async def _refuse_undispatchable(
    ev: Evaluator, rs: RuleSet, agency: str, plan: m.Plan, session: m.Session, as_of, need: int
) -> None:
    """Team-level rules first (scope of the plan, minimum size): no member can fix those."""
    probe = m.TeamInput(
        agency,
        plan,
        session,
        tuple(m.Supervisor(name=f"~{i}", kind=_probe_kind(rs, agency)) for i in range(need)),
        as_of,
    )
    probe_job = Job(rs)
    tf, _ = F.team_facts(rs, probe, list(probe.supervisors))
    probe_job.msgs.append(Msg("team", tf, plan.name))
    await fire(ev, [probe_job])
    blocking = [f for f in findings_of(probe_job) if f.severity == m.BLOCKING]
    if blocking:
        raise FailedPrecondition(
            "TEAM_NOT_DISPATCHABLE",
            [PreconditionViolation(f.rule_id, plan.name, f.message) for f in blocking],
            metadata={"team_size": str(need), "dispatching_agency": agency},
        )


async def _draw_members(
    ev: Evaluator,
    rs: RuleSet,
    agency: str,
    plan: m.Plan,
    session: m.Session,
    days: list,
    order: DrawOrder,
    load: Callable[[int], m.Supervisor],
    need: int,
) -> tuple[list[m.Supervisor], dict[str, list[str]], int]:
    """Walk the draw order in widening steps until `need` members are legal on every day: (legal members,
    exclusions by name → blocking rule ids, how many were evaluated)."""
    legal: list[m.Supervisor] = []
    exclusions: dict[str, list[str]] = {}
    evaluated = 0
    pos = 0
    chunk = max(8, 2 * need)
    while len(legal) < need and pos < len(order):
        batch = [load(i) for i in order[pos : pos + chunk]]
        pos += len(batch)
        jobs = []
        for s in batch:
            job = Job(rs)
            for day in days:
                job.msgs.extend(member_msgs(rs, agency, plan, session, s, day))
            jobs.append(job)
        await fire(ev, jobs)
        evaluated += len(batch)
        for s, job in zip(batch, jobs, strict=True):
            blocking_ids = list(dict.fromkeys(r.id for rules in job.fired for r in rules if r.severity == m.BLOCKING))
            if blocking_ids:
                exclusions[s.name] = blocking_ids
            elif len(legal) < need:
                legal.append(s)
        if len(legal) < need:
            chunk = min(2048, chunk * 4)  # the pool is thin: widen the steps
    return legal, exclusions, evaluated


def _pool_too_small(
    rs: RuleSet, plan: m.Plan, need: int, pool_size: int, eligible: int, exclusions: dict[str, list[str]]
) -> FailedPrecondition:
    counts = Counter(rid for ids in exclusions.values() for rid in ids)
    violations = [
        PreconditionViolation(
            "bj-2022.dispatch.pool-too-small",
            plan.name,
            f"可委派的督导员不足：需要{need}人，候选{pool_size}人中符合条件的只有{eligible}人（第二十条）",
        )
    ]
    violations += [
        PreconditionViolation(rid, f"{n}人", f"{n}人因此被排除：{rs.by_id[rid].message}")
        for rid, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    return FailedPrecondition(
        "POOL_TOO_SMALL",
        violations,
        metadata={
            "required": str(need),
            "eligible_count": str(eligible),
            "pool_size": str(pool_size),
            **{f"excluded.{rid}": str(n) for rid, n in counts.items()},
        },
    )


def _probe_kind(rs: RuleSet, agency: str) -> int:
    kind, _ = F.agency_kind(rs, agency)
    return m.INTERNAL if kind == m.AGENCY_INSTITUTION else m.EXTERNAL


@dataclass
class SampleDraw:
    plans: list[str]
    seed: str
    pool_digest: str
    decision: m.Decision


def sample_inspection_targets(
    decider: Decider,
    catalog: Catalog,
    *,
    plans: Sequence[str],
    sample_size: int,
    sample_ratio: float,
    seed: str,
    as_of,
    subject: str,
    pool_digest: str,
    pinned: RuleSet | None = None,
) -> SampleDraw:
    rs = pinned if pinned is not None else catalog.in_force(as_of)
    order = order_pool(seed, [(p, 0) for p in plans], 0.0)
    ratio = sample_ratio or float(rs.param("inspection.default_sample_ratio"))
    k = sample_size if sample_size > 0 else math.ceil(ratio * len(order))
    k = min(k, len(order))
    chosen = [plans[i] for i in order[:k]]
    decision = m.Decision(
        m.KIND_INSPECTION_SAMPLE,
        m.ALLOW,
        [],
        subject,
        as_of,
        rs.id,
        rs.version,
        rs.effective_from,
        {
            "seed": seed,
            "pool_size": str(len(order)),
            "sample_size": str(k),
            "pool_digest": pool_digest,
            "plans": ",".join(chosen),
        },
        evaluated_at=decider.clock.now(),
    )
    return SampleDraw(chosen, seed, pool_digest, decision)
