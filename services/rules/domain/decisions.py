"""The decisions: eligibility, recusal, team, penalty — facts in, explained Decision out.

Each decision resolves the rule set in force on its date (D16), derives flat facts (services.rules.
domain.facts), lets an Evaluator fire the rules (the engine workers in production, the same declarations
in plain Python for the bench baseline) and turns the fired rules into findings in declaration order, so
the same input and rule-set version always give the same decision.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Protocol

from common.clock import Clock
from common.errors import FailedPrecondition, PreconditionViolation
from services.rules.domain import facts as F
from services.rules.domain import model as m
from services.rules.domain.ruleset import Catalog, Rule, RuleSet, python_fired


class Evaluator(Protocol):
    async def evaluate(self, version: str, kind: str, facts: list[dict]) -> list[list[str]]:
        """Ids of the rules of (version, kind) that fire, per fact message."""
        ...


def run_sync(coro):
    """Drive a decision coroutine whose evaluator is synchronous (`evaluate_sync`): it never suspends,
    so no event loop is needed — this is how the engine workers run the domain code."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("decision coroutine suspended; the evaluator must be synchronous here")


class PythonEvaluator:
    """Evaluates the same declarations in plain Python (bench baseline, cross-checks)."""

    def __init__(self, catalog: Catalog) -> None:
        self._sets = {rs.version: rs for rs in catalog.rulesets}

    async def evaluate(self, version: str, kind: str, facts: list[dict]) -> list[list[str]]:
        rs = self._sets[version]
        return [python_fired(rs, kind, f) for f in facts]


@dataclass
class Msg:
    kind: str
    facts: dict[str, Any]
    subject: str


@dataclass
class Job:
    rs: RuleSet
    msgs: list[Msg] = field(default_factory=list)
    fired: list[list[Rule]] = field(default_factory=list)


async def fire(evaluator: Evaluator, jobs: list[Job]) -> None:
    """Evaluate every message of every job, grouped per (rule-set version, kind) into one engine call."""
    groups: dict[tuple[str, str], list[tuple[Job, int]]] = defaultdict(list)
    for job in jobs:
        job.fired = [[] for _ in job.msgs]
        for i, msg in enumerate(job.msgs):
            groups[(job.rs.version, msg.kind)].append((job, i))
    keys = list(groups)
    sync = getattr(evaluator, "evaluate_sync", None)
    if sync is not None:  # in an engine worker: no event loop, no suspension (see run_sync)
        results = [sync(v, k, [job.msgs[i].facts for job, i in groups[(v, k)]]) for v, k in keys]
    else:
        results = await asyncio.gather(
            *[evaluator.evaluate(v, k, [job.msgs[i].facts for job, i in groups[(v, k)]]) for v, k in keys]
        )
    for key, fired_lists in zip(keys, results, strict=True):
        for (job, i), ids in zip(groups[key], fired_lists, strict=True):
            by_id = job.rs.by_id
            job.fired[i] = sorted((by_id[r] for r in ids), key=lambda r: r.order)


def findings_of(job: Job) -> list[m.Finding]:
    return [
        m.Finding(
            r.id,
            r.article,
            r.interpretation,
            r.severity,
            r.message,
            msg.subject,
            {f: str(msg.facts[f]) for f in r.fields},
        )
        for msg, rules in zip(job.msgs, job.fired, strict=True)
        for r in rules
    ]


def outcome_of(findings: list[m.Finding]) -> int:
    if any(f.severity == m.BLOCKING for f in findings):
        return m.DENY
    return m.ADVISE if findings else m.ALLOW


class Decider:
    """Makes decisions against a catalog with an evaluator; `pinned` forces a rule-set version (replay)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def _decision(self, kind: int, job: Job, subject: str, as_of, derived: dict[str, str], now) -> m.Decision:
        found = findings_of(job)
        return m.Decision(
            kind,
            outcome_of(found),
            found,
            subject,
            as_of,
            job.rs.id,
            job.rs.version,
            job.rs.effective_from,
            derived,
            evaluated_at=now,
        )

    @staticmethod
    def _rs(catalog: Catalog, day, pinned: RuleSet | None) -> RuleSet:
        return pinned if pinned is not None else catalog.in_force(day)

    # -- eligibility (第九条, 第十条, 第十三条, 第二十七条) ------------------------------------------------------
    async def eligibility(
        self, catalog: Catalog, ev: Evaluator, items: list[m.EligibilityInput], pinned: RuleSet | None = None
    ) -> list[m.Decision]:
        jobs, derived = [], []
        for it in items:
            job = Job(self._rs(catalog, it.as_of, pinned))
            facts, d = F.eligibility_facts(job.rs, it)
            job.msgs.append(Msg("eligibility", facts, it.supervisor.name))
            jobs.append(job)
            derived.append(d)
        await fire(ev, jobs)
        now = self.clock.now()  # one evaluation time per call (a batch is evaluated at one instant)
        return [
            self._decision(m.KIND_ELIGIBILITY, j, it.supervisor.name, it.as_of, d, now)
            for j, it, d in zip(jobs, items, derived, strict=True)
        ]

    # -- recusal (第十六条, 第十二条, 第二十条; D9) -------------------------------------------------------------
    async def recusal(
        self, catalog: Catalog, ev: Evaluator, items: list[m.RecusalInput], pinned: RuleSet | None = None
    ) -> list[m.Decision]:
        jobs = []
        for it in items:
            job = Job(self._rs(catalog, it.as_of, pinned))
            job.msgs.append(
                Msg(
                    "recusal", F.recusal_facts(job.rs, it.supervisor, it.plan, it.session, it.as_of), it.supervisor.name
                )
            )
            jobs.append(job)
        await fire(ev, jobs)
        now = self.clock.now()
        return [
            self._decision(
                m.KIND_RECUSAL, j, it.supervisor.name, it.as_of, {"plan": it.plan.name, "session": it.session.name}, now
            )
            for j, it in zip(jobs, items, strict=True)
        ]

    # -- team (第二十条; D7, D8 + each member's eligibility and recusal) --------------------------------------
    @staticmethod
    def team_job(rs: RuleSet, it: m.TeamInput) -> tuple[Job, dict[str, str], list[m.Supervisor]]:
        members, seen = [], set()
        for s in it.supervisors:
            if s.name not in seen:
                seen.add(s.name)
                members.append(s)
        job = Job(rs)
        tf, derived = F.team_facts(rs, it, members)
        job.msgs.append(Msg("team", tf, it.plan.name))
        for s in members:
            job.msgs.extend(member_msgs(rs, it.agency, it.plan, it.session, s, it.as_of))
        return job, derived, members

    async def team(
        self, catalog: Catalog, ev: Evaluator, items: list[m.TeamInput], pinned: RuleSet | None = None
    ) -> list[m.Decision]:
        built = [self.team_job(self._rs(catalog, it.as_of, pinned), it) for it in items]
        await fire(ev, [b[0] for b in built])
        now = self.clock.now()
        out = []
        for (job, derived, members), it in zip(built, items, strict=True):
            d = self._decision(m.KIND_TEAM, job, it.plan.name, it.as_of, derived, now)
            d.recommended_team_size = F.recommended_team_size(job.rs, it.plan.candidate_count)
            d.member_count = len(members)
            out.append(d)
        return out

    # -- penalty (第二十六条, 第二十七条; D13) ------------------------------------------------------------------
    async def penalty(
        self, catalog: Catalog, ev: Evaluator, items: list[m.PenaltyInput], pinned: RuleSet | None = None
    ) -> list[m.Decision]:
        jobs, derived, facts = [], [], []
        for it in items:
            job = Job(self._rs(catalog, it.as_of, pinned))
            f, d = F.penalty_facts(job.rs, it)
            job.msgs.append(Msg("penalty", f, it.subject))
            jobs.append(job)
            derived.append(d)
            facts.append(f)
        await fire(ev, jobs)
        refuse_blocking(jobs, [it.subject for it in items], "PENALTY_NOT_APPLICABLE")
        now = self.clock.now()
        out = []
        for job, it, d, f in zip(jobs, items, derived, facts, strict=True):
            dec = self._decision(m.KIND_PENALTY, job, it.subject, it.as_of, d, now)
            dec.recommendation, deciding = recommend(job.rs, it, f, job.fired[0])
            dec.findings = [x for x in dec.findings if x.rule_id in deciding]  # only what decided it (#14 item 6)
            dec.outcome = m.ADVISE
            out.append(dec)
        return out

    # -- Annex 3 records (D11, D14) and Annex 4 feedback (D12) -----------------------------------------------
    async def record(
        self, catalog: Catalog, ev: Evaluator, items: list[m.RecordInput], pinned: RuleSet | None = None
    ) -> list[m.Decision]:
        jobs = []
        for it in items:
            job = Job(self._rs(catalog, it.as_of, pinned))
            for a in sorted(it.answers, key=lambda a: a.item_number):
                job.msgs.append(Msg("record_item", F.record_item_facts(job.rs, it, a), f"items/{a.item_number}"))
            jobs.append(job)
        await fire(ev, jobs)
        now = self.clock.now()
        out = []
        for job, it in zip(jobs, items, strict=True):
            dec = self._decision(m.KIND_RECORD, job, it.subject, it.as_of, {"form": str(it.form)}, now)
            opening = F.case_opening_items(job.rs)
            dec.case_openings = [
                (msg.facts["item_number"], opening[(it.form, msg.facts["item_number"])])
                for msg, fired in zip(job.msgs, job.fired, strict=True)
                if any(r.id.endswith(CASE_OPENING_RULE) for r in fired)
            ]
            out.append(dec)
        return out

    async def feedback(
        self, catalog: Catalog, ev: Evaluator, items: list[m.FeedbackInput], pinned: RuleSet | None = None
    ) -> list[m.Decision]:
        jobs = []
        for it in items:
            job = Job(self._rs(catalog, it.as_of, pinned))
            job.msgs.append(Msg("feedback", F.feedback_facts(job.rs, it), it.subject))
            jobs.append(job)
        await fire(ev, jobs)
        now = self.clock.now()
        out = []
        for job, it in zip(jobs, items, strict=True):
            dec = self._decision(m.KIND_FEEDBACK, job, it.subject, it.as_of, {}, now)
            if any(r.id.endswith(REVIEW_RULE) for r in job.fired[0]):
                dec.review_trigger = int(job.rs.param("feedback.review_trigger"))
            out.append(dec)
        return out


# The rules (id after the rule-set prefix) whose firing the record/feedback responses report as structured
# fields: the D14 case openings and the D12 review.
CASE_OPENING_RULE = ".annex3.case-opening-item"
REVIEW_RULE = ".art27.feedback-opens-review"


def refuse_blocking(jobs: list[Job], subjects: list[str], reason: str) -> None:
    """A blocking rule of an advisory kind (e.g. 第二十七条 against an internal supervisor) refuses the request:
    FAILED_PRECONDITION citing the rule, its article and message."""
    violations = [
        PreconditionViolation(r.id, subject, f"{r.message}（{r.article}）")
        for job, subject in zip(jobs, subjects, strict=True)
        for rules in job.fired
        for r in rules
        if r.severity == m.BLOCKING
    ]
    if violations:
        raise FailedPrecondition(reason, violations)


def member_msgs(rs: RuleSet, agency: str, plan: m.Plan, session: m.Session, s: m.Supervisor, day) -> list[Msg]:
    """A member's scope, eligibility-for-dispatch and recusal messages (used by CheckTeam and ProposeTeam)."""
    ef, _ = F.eligibility_facts(rs, m.EligibilityInput(s, day, m.DISPATCH))
    return [
        Msg("team_member", F.member_facts(rs, agency, s, day), s.name),
        Msg("eligibility", ef, s.name),
        Msg("recusal", F.recusal_facts(rs, s, plan, session, day), s.name),
    ]


def recommend(
    rs: RuleSet, it: m.PenaltyInput, facts: dict[str, Any], fired: list[Rule]
) -> tuple[m.Recommendation, set[str]]:
    """D13 ladder: the highest rung any fired rule proposes ("climb" = one above the prior rung), max 3; and
    the ids of the rules that decided it (proposed that rung, or the immediate report)."""
    proposed = {
        r.id: min(3, facts["prior_max_rung_in_window"] + 1) if r.rung == "climb" else int(r.rung or 1) for r in fired
    }
    rung = max([1, *proposed.values()])
    institution = it.subject_kind == m.SUBJECT_INSTITUTION
    ladder = rs.param("penalty.ladder.art26" if institution else "penalty.ladder.art27")
    recommendation = m.Recommendation(
        article="第二十六条" if institution else "第二十七条",
        rung=rung,
        sanction=m.SANCTION_BASE[it.subject_kind] + rung,
        sanction_text=ladder[rung - 1],
        immediate_report=any(r.immediate_report for r in fired),
        serious=bool(facts["serious_trigger"] or facts["assessed_serious"]),
    )
    return recommendation, {r.id for r in fired if proposed[r.id] == rung or r.immediate_report}
