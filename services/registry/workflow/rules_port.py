"""Port to `bjsv.rules.v1.RulesService`: the workflow asks, the rules service decides (CheckTeam, ProposeTeam,
EvaluatePenalty, EvaluateRecord, EvaluateFeedback). The facts it needs are assembled here from the registry's own
tables (supervisors with their appointment, attestations, badge; plans; prior cases) and the answers come back
typed (`results`).

The channel is opened on first use inside the serving event loop (an aio channel is bound to its loop) and
closed by `close()`, which the composition root runs on stop.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import grpc
from sqlalchemy.orm import Session

from bjsv.rules.v1 import rules_pb2, rules_pb2_grpc
from common import api
from common.clients import channel, invoke
from common.clock import SHANGHAI
from common.db import Database
from common.errors import FailedPrecondition, NotFound, PreconditionViolation
from services.registry.domain import training as training_rules
from services.registry.domain.districts import CITY_CODE
from services.registry.domain.workflow import dispatch as dispatch_rules
from services.registry.domain.workflow import plans
from services.registry.domain.workflow.model import (
    Answer,
    CaseSubjectKind,
    CaseTrigger,
    DispatchScope,
    ItemAnswer,
    PenaltyRung,
    SessionWindow,
    SupervisionForm,
)
from services.registry.storage import workflow_case_repository as cases_repo
from services.registry.storage import workflow_models as wm
from services.registry.storage import workflow_repository as repo
from services.registry.workflow.convert import RUNG, RUNG_IN
from services.registry.workflow.results import Pool, PoolMember, Proposal, Recommendation, TeamCheck, TeamFinding

T = TypeVar("T")

RULES_TRIGGER = {
    CaseTrigger.REFUSED_INFORMATION: rules_pb2.PENALTY_TRIGGER_ART26_REFUSE_INFORMATION,
    CaseTrigger.OBSTRUCTED_REPORTING: rules_pb2.PENALTY_TRIGGER_ART26_OBSTRUCT_REPORTING,
    CaseTrigger.REFUSED_IMPROVEMENT: rules_pb2.PENALTY_TRIGGER_ART26_REFUSE_IMPROVEMENT,
    CaseTrigger.FALSIFICATION: rules_pb2.PENALTY_TRIGGER_ART26_FALSIFICATION,
    CaseTrigger.RETALIATION: rules_pb2.PENALTY_TRIGGER_ART26_RETALIATION,
    CaseTrigger.OTHER_INTERFERENCE: rules_pb2.PENALTY_TRIGGER_ART26_OTHER,
    CaseTrigger.SUPERVISOR_DUTY_FAILURE: rules_pb2.PENALTY_TRIGGER_ART27_NEGLECT_OF_DUTY,
    CaseTrigger.SUPERVISOR_PRIVATE_GAIN: rules_pb2.PENALTY_TRIGGER_ART27_PRIVATE_GAIN,
}
TRIGGER_FROM_RULES = {v: k for k, v in RULES_TRIGGER.items()}
RULES_FORM = {
    SupervisionForm.ON_SITE: rules_pb2.SUPERVISION_FORM_ON_SITE,
    SupervisionForm.RECORDS_REVIEW: rules_pb2.SUPERVISION_FORM_RECORDS_REVIEW,
}
RULES_ANSWER = {
    Answer.YES: rules_pb2.ANSWER_VALUE_YES,
    Answer.NO: rules_pb2.ANSWER_VALUE_NO,
    None: rules_pb2.ANSWER_VALUE_UNSPECIFIED,
}
RULES_STATUS = {
    "active": rules_pb2.SUPERVISOR_STATUS_ACTIVE,
    "expired": rules_pb2.SUPERVISOR_STATUS_EXPIRED,
    "suspended": rules_pb2.SUPERVISOR_STATUS_SUSPENDED,
    "revoked": rules_pb2.SUPERVISOR_STATUS_REVOKED,
}
RULES_ATTESTATION = {
    "art9_1": rules_pb2.ATTESTATION_ITEM_PARTY_LINE,
    "art9_2": rules_pb2.ATTESTATION_ITEM_POLICY_KNOWLEDGE,
    "art9_3": rules_pb2.ATTESTATION_ITEM_INTEGRITY,
    "art9_4": rules_pb2.ATTESTATION_ITEM_ABILITY,
    "health": rules_pb2.ATTESTATION_ITEM_HEALTH,
}
RULES_LEVEL = {"city": rules_pb2.SUPERVISOR_LEVEL_CITY, "district": rules_pb2.SUPERVISOR_LEVEL_DISTRICT}
# 外督员 on Annex 4 only: feedback is on external supervisors (第二十三条).
EXTERNAL = "external"


@dataclass(frozen=True)
class TeamScope:
    """What a team is checked against: the plan, the supervised sessions and the day each is supervised on."""

    plan: wm.CertPlan
    scope: DispatchScope
    sessions: list[SessionWindow]
    days: list[dt.date]


def draw_session(session_facts: list[rules_pb2.SessionFacts]) -> rules_pb2.SessionFacts:
    """The one session ProposeTeam draws for, standing for every session the dispatch covers.

    CheckTeam checks the team against each covered session, so the draw must exclude anyone who is an examiner
    (or candidate) in ANY of them (第十六条 不能兼任同场次考评工作), not only in the first: the first session's
    name and date, with the examiners and candidates of all covered sessions (in session order, deduplicated)."""
    first = session_facts[0]
    return rules_pb2.SessionFacts(
        name=first.name,
        date=first.date,
        examiner_person_ids=list(dict.fromkeys(p for sf in session_facts for p in sf.examiner_person_ids)),
        candidate_person_ids=list(dict.fromkeys(p for sf in session_facts for p in sf.candidate_person_ids)),
    )


def _session_people(session: dict[str, Any]) -> list[dict[str, Any]]:
    """Examiners and staff (考务人员) of a session: both do the session's 考评工作, so a supervisor listed as
    either may not supervise it (第十六条 不能兼任同场次考评工作; D18 in the service README). The rules
    service's SessionFacts has one list for them, `examiner_person_ids`."""
    return [*session["examiners"], *session["staff"]]


def kind_of(v: repo.SupervisorView) -> rules_pb2.SupervisorKind:
    """外督员 or 内督员 (第八条), as the rules service names it: 第二十七条 applies to the former only."""
    return rules_pb2.SUPERVISOR_KIND_EXTERNAL if v.type == EXTERNAL else rules_pb2.SUPERVISOR_KIND_INTERNAL


def _pool(resp: rules_pb2.ProposeTeamResponse, views: list[repo.SupervisorView], recent: dict[int, int]) -> Pool:
    """The pool as drawn from, by resource name, with the team and the rule ids that excluded members."""
    team, excluded = set(resp.team), {e.supervisor: list(e.rule_ids) for e in resp.exclusions}
    members = [
        PoolMember(v.name, v.full_name, v.name in team, excluded.get(v.name, []), recent.get(v.id, 0))
        for v in sorted(views, key=lambda v: v.id)
    ]
    return Pool(members, resp.evaluated_count, resp.pool_digest)


def supervisor_facts(v: repo.SupervisorView, days: list[dt.date], recent: int = 0) -> rules_pb2.SupervisorFacts:
    """The supervisor as the rules see them on the supervised `days`: the training passed by the first day
    (第十条, D22) and the employer/affiliations in force on any of them (第十六条)."""
    first, last = min(days), max(days)
    trained = training_rules.passed_on(v.trainings, first)
    current = [a for a in v.affiliations if a.overlaps(first, last)]
    return rules_pb2.SupervisorFacts(
        name=v.name,
        person_id=plans.person_key(v.id_number),
        gender=rules_pb2.GENDER_MALE if v.male else rules_pb2.GENDER_FEMALE,
        birth_date=v.birth_date.isoformat(),
        kind=kind_of(v),
        level=RULES_LEVEL.get(v.level, rules_pb2.SUPERVISOR_LEVEL_UNSPECIFIED),
        district_code=v.district_code,
        institution=v.institution,
        status=RULES_STATUS.get(v.status, rules_pb2.SUPERVISOR_STATUS_UNSPECIFIED),
        term_start_date=api.format_date(v.term_start),
        term_end_date=api.format_date(v.term_end),
        training_passed=trained is not None,
        training_passed_date=api.format_date(trained.assessed_date if trained else None),
        employer=next((a.institution for a in current if a.employer), ""),
        affiliations=sorted({a.institution for a in current if not a.employer}),
        attestations=[
            rules_pb2.Attestation(item=RULES_ATTESTATION[item], attested_by=by, attested_date=api.format_date(day))
            for item, by, day in v.attestations
            if item in RULES_ATTESTATION
        ],
        recent_dispatch_count=recent,
    )


def prior_case(c: wm.PenaltyCase, decs: list[wm.CaseDecision]) -> rules_pb2.PriorCase:
    last = decs[-1]
    return rules_pb2.PriorCase(
        name=f"cases/{c.id}",
        trigger=RULES_TRIGGER[CaseTrigger(c.triggers[0])],
        decided_date=api.format_date(last.decided_on),
        sanction=cast(rules_pb2.Sanction, RUNG[PenaltyRung(last.rung)]),  # Sanction shares PenaltyRung's numbers
        correction_deadline=api.format_date(last.correction_deadline),
        corrected_date=api.format_date(c.corrected_at.astimezone(SHANGHAI).date()) if c.corrected_at else "",
    )


def _history(session: Session, subject: str, exclude: int | None) -> list[rules_pb2.PriorCase]:
    rows = [c for c in cases_repo.cases_of_subject(session, subject) if c.id != exclude]
    decs = cases_repo.decisions(session, [c.id for c in rows])
    return [prior_case(c, decs[c.id]) for c in rows if decs[c.id]]


def _pool_filters(scope: DispatchScope, agency: str) -> dict[str, Any]:
    """Who may be drawn: 内督员 of the institution; 市级 外督员 for the city centre; else the district's."""
    district = dispatch_rules.agency_district(agency)
    if scope is DispatchScope.INTERNAL:
        return {"type": "internal", "level": None, "district_code": None, "institution_number": agency.split("/", 1)[1]}
    if district == CITY_CODE:
        return {"type": EXTERNAL, "level": "city", "district_code": None, "institution_number": None}
    return {"type": EXTERNAL, "level": "district", "district_code": district, "institution_number": None}


class RulesPort:
    def __init__(self, target: str, database: Database, *, timeout: float, recent_window_days: int) -> None:
        self._target = target
        self._db = database
        self._timeout = timeout
        self._recent_window = dt.timedelta(days=recent_window_days)
        self._channel: grpc.aio.Channel | None = None
        self._stub: rules_pb2_grpc.RulesServiceStub | None = None

    def _rules(self) -> rules_pb2_grpc.RulesServiceStub:
        if self._stub is None:
            self._channel = channel(self._target)
            self._stub = rules_pb2_grpc.RulesServiceStub(self._channel)
        return self._stub

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close(grace=None)
            self._channel = self._stub = None

    async def _call(self, call: Callable[..., Awaitable[T]], request: Any) -> T:
        return await invoke(call(request, timeout=self._timeout), dependency="rules")

    async def _facts(
        self, team: TeamScope, ids: list[int]
    ) -> tuple[rules_pb2.PlanFacts, list[rules_pb2.SessionFacts], dict[int, repo.SupervisorView]]:
        plan_row = team.plan
        raw = {s["session_id"]: s for s in plan_row.sessions}
        people = [x for s in team.sessions for x in _session_people(raw[s.session_id])]
        examiner_sups = {api.parse_id(x["supervisor"], "supervisors") for x in people if x["supervisor"]}
        views = await self._db.read(repo.supervisors, sorted(set(ids) | examiner_sups))
        plan_facts = rules_pb2.PlanFacts(
            name=f"plans/{plan_row.id}",
            institution=plan_row.institution,
            district_code=plan_row.district,
            candidate_count=plan_row.candidate_count,
            start_date=api.format_date(plan_row.first_day),
            end_date=api.format_date(plan_row.last_day),
        )
        session_facts = []
        for s, day in zip(team.sessions, team.days, strict=True):
            person_ids = []
            for x in _session_people(raw[s.session_id]):
                if x["id_number"]:
                    person_ids.append(plans.person_key(x["id_number"]))
                elif x["supervisor"] and (v := views.get(api.parse_id(x["supervisor"], "supervisors"))):
                    person_ids.append(plans.person_key(v.id_number))
            session_facts.append(
                rules_pb2.SessionFacts(
                    name=f"plans/{plan_row.id}/sessions/{s.session_id}",
                    date=day.isoformat(),
                    examiner_person_ids=person_ids,
                )
            )
        return plan_facts, session_facts, views

    async def check_team(self, team: TeamScope, agency: str, team_ids: list[int], subject: str) -> TeamCheck:
        """CheckTeam on every covered session; a blocking finding refuses the team (FAILED_PRECONDITION)."""
        plan_facts, session_facts, views = await self._facts(team, team_ids)
        missing = [i for i in team_ids if i not in views]
        if missing:
            raise NotFound(f"supervisors/{missing[0]}")
        members = [supervisor_facts(views[i], team.days) for i in team_ids]
        reqs = [
            rules_pb2.CheckTeamRequest(
                dispatching_agency=agency, plan=plan_facts, session=sf, supervisors=members, as_of_date=sf.date
            )
            for sf in session_facts
        ]
        resp = await self._call(self._rules().BatchCheckTeam, rules_pb2.BatchCheckTeamRequest(requests=reqs))
        seen: set[tuple[str, str, str]] = set()
        blocking: list[TeamFinding] = []
        advisory: list[TeamFinding] = []
        for r in resp.responses:
            for f in r.decision.findings:
                if (key := (f.rule_id, f.subject, f.message)) in seen:
                    continue
                seen.add(key)
                item = TeamFinding(f.rule_id, f.message, f.article, f.subject)
                (blocking if f.severity == rules_pb2.SEVERITY_BLOCKING else advisory).append(item)
        if blocking:
            # The details are bounded (common.errors); the deciding decisions are named so that a caller can
            # fetch every finding with GetDecision (issue #14 item 7).
            denied = [r.decision.name for r in resp.responses if r.decision.outcome == rules_pb2.OUTCOME_DENY]
            raise FailedPrecondition(
                "TEAM_CHECK_FAILED",
                [PreconditionViolation(f.rule_id, f.subject or subject, f.message) for f in blocking],
                metadata={"decision": denied[0], "decisions": ",".join(denied)},
            )
        return TeamCheck(
            advisory=advisory,
            rule_set_version=resp.responses[-1].decision.ruleset_version if resp.responses else "",
            recommended_team_size=max((r.recommended_team_size for r in resp.responses), default=0),
            decisions=[r.decision.name for r in resp.responses],
            views=views,
        )

    async def check_recusal(
        self, team: TeamScope, supervisor_id: int, conflicts: list[rules_pb2.DeclaredConflict], subject: str
    ) -> list[str]:
        """CheckRecusal of one member with their declared conflicts on every covered session (第十六条); a blocking
        finding refuses (FAILED_PRECONDITION). Returns the decision names."""
        plan_facts, session_facts, views = await self._facts(team, [supervisor_id])
        if supervisor_id not in views:
            raise NotFound(f"supervisors/{supervisor_id}")
        facts = supervisor_facts(views[supervisor_id], team.days)
        facts.declared_conflicts.extend(conflicts)
        reqs = [
            rules_pb2.CheckRecusalRequest(supervisor=facts, plan=plan_facts, session=sf, as_of_date=sf.date)
            for sf in session_facts
        ]
        resp = await self._call(self._rules().BatchCheckRecusal, rules_pb2.BatchCheckRecusalRequest(requests=reqs))
        blocking = {
            (f.rule_id, f.message): f
            for r in resp.responses
            for f in r.decision.findings
            if f.severity == rules_pb2.SEVERITY_BLOCKING
        }
        if blocking:
            raise FailedPrecondition(
                "RECUSAL_REQUIRED",
                [PreconditionViolation(f.rule_id, f.subject or subject, f.message) for f in blocking.values()],
            )
        return [r.decision.name for r in resp.responses]

    async def propose_team(self, team: TeamScope, agency: str, team_size: int, seed: str, today: dt.date) -> Proposal:
        """ProposeTeam: a seeded draw from the pool the dispatching agency may dispatch (第十五条–第二十条)."""
        ids = await self._db.read(repo.pool_ids, **_pool_filters(team.scope, agency))
        plan_facts, session_facts, views = await self._facts(team, ids)
        recent = await self._db.read(repo.recent_dispatch_counts, ids, today - self._recent_window)
        drawn_for = draw_session(session_facts)
        req = rules_pb2.ProposeTeamRequest(
            dispatching_agency=agency,
            plan=plan_facts,
            session=drawn_for,
            pool=[supervisor_facts(views[i], team.days, recent.get(i, 0)) for i in ids if i in views],
            as_of_date=drawn_for.date,
            also_on_dates=sorted({sf.date for sf in session_facts} - {drawn_for.date}),  # legal on every covered day
            team_size=team_size,
            seed=seed,
        )
        resp = await self._call(self._rules().ProposeTeam, req)
        return Proposal(
            team=list(resp.team),
            seed=resp.seed,
            rule_set_version=resp.decision.ruleset_version,
            pool=_pool(resp, [views[i] for i in ids if i in views], recent),
        )

    async def history(self, subject: str, exclude: int | None = None) -> list[rules_pb2.PriorCase]:
        """The subject's decided cases, as EvaluatePenalty's history (D13 repetition and escalation)."""
        return await self._db.read(_history, subject, exclude)

    async def recommend(
        self,
        kind: CaseSubjectKind,
        subject: str,
        triggers: list[CaseTrigger],
        history: list[rules_pb2.PriorCase],
        description: str,
        now: dt.datetime,
    ) -> Recommendation:
        """EvaluatePenalty for each trigger; the highest recommended rung wins (D13). The rules service owns
        the ladder, its wording and the 拒不改正 escalation (from `history`); a 第二十七条 case is sent with the
        supervisor's kind, and one against a 内督员 comes back refused (FAILED_PRECONDITION, 第二十七条、第八条)."""
        today = now.astimezone(SHANGHAI).date().isoformat()
        kind_of_subject = rules_pb2.SUPERVISOR_KIND_UNSPECIFIED
        subject_kind = rules_pb2.PENALTY_SUBJECT_KIND_INSTITUTION
        if kind is CaseSubjectKind.SUPERVISOR:
            subject_kind = rules_pb2.PENALTY_SUBJECT_KIND_SUPERVISOR
            views = await self._db.read(
                repo.supervisors, [api.parse_id(subject, "supervisors", field="penalty_case.subject")]
            )
            if not views:
                raise NotFound(subject)
            kind_of_subject = kind_of(next(iter(views.values())))
        reqs = [
            rules_pb2.EvaluatePenaltyRequest(
                subject_kind=subject_kind,
                subject=subject,
                history=history,
                trigger=rules_pb2.NewTrigger(
                    trigger=RULES_TRIGGER[t], occurred_date=today, description=description[:500]
                ),
                as_of_date=today,
                supervisor_kind=kind_of_subject,
            )
            for t in triggers
        ]
        resp = await self._call(
            self._rules().BatchEvaluatePenalty, rules_pb2.BatchEvaluatePenaltyRequest(requests=reqs)
        )
        best = max(resp.responses, key=lambda r: r.recommendation.rung)
        rec = best.recommendation
        return Recommendation(
            rung=RUNG_IN.get(rec.sanction, PenaltyRung.NO_ACTION),  # the same numbering: the identity
            article=rec.article,
            sanction_text=rec.sanction_text,
            explanation="；".join(f.message for f in best.decision.findings),
            serious=any(r.recommendation.serious for r in resp.responses),
            immediate_report=any(r.recommendation.immediate_report for r in resp.responses),
            rule_ids=sorted({f.rule_id for r in resp.responses for f in r.decision.findings}),
            rule_set_version=best.decision.ruleset_version,
            decisions=[r.decision.name for r in resp.responses],
            evaluate_time=now.isoformat(),
        )

    async def evaluate_record(
        self, subject: str, form: SupervisionForm, answers: list[ItemAnswer], as_of: dt.date
    ) -> rules_pb2.EvaluateRecordResponse:
        """EvaluateRecord: D11 (a DENY is the refusal) and the cases D14 opens (`case_openings`)."""
        req = rules_pb2.EvaluateRecordRequest(
            subject=subject,
            form=RULES_FORM[form],
            answers=[
                rules_pb2.RecordAnswer(item_number=a.item_number, answer=RULES_ANSWER[a.answer], remark=a.remark)
                for a in answers
            ],
            as_of_date=as_of.isoformat(),
        )
        return await self._call(self._rules().EvaluateRecord, req)

    async def review_trigger(
        self, subject: str, badge_worn: Answer | None, duties: Answer | None, integrity: Answer | None, as_of: dt.date
    ) -> CaseTrigger | None:
        """EvaluateFeedback (D12): the 第二十七条 trigger of the review the Annex 4 answers open, or None."""
        req = rules_pb2.EvaluateFeedbackRequest(
            subject=subject,
            badge_worn=RULES_ANSWER[badge_worn],
            duties_performed=RULES_ANSWER[duties],
            integrity_kept=RULES_ANSWER[integrity],
            as_of_date=as_of.isoformat(),
        )
        resp = await self._call(self._rules().EvaluateFeedback, req)
        return TRIGGER_FROM_RULES[resp.review_trigger] if resp.opens_review else None
