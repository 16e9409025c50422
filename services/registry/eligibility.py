"""Adapter to the rules service (bjsv.rules.v1): eligibility decisions at appointment and renewal.

The registry records facts; the rules service decides (第九条, 第十条, D6) and keeps the explained decision
(D15). We store the decision name with the appointment term. If the rules service cannot be reached the
call fails with UNAVAILABLE — never an appointment without a decision.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import grpc

from bjsv.rules.v1 import rules_pb2, rules_pb2_grpc
from common import clients
from common.clients import invoke
from common.errors import FailedPrecondition, PreconditionViolation
from services.registry.domain.supervisors import Training
from services.registry.storage import models as m

PURPOSE = {"appointment": rules_pb2.PURPOSE_APPOINTMENT, "renewal": rules_pb2.PURPOSE_RENEWAL}
ITEM = {
    "art9_1": rules_pb2.ATTESTATION_ITEM_PARTY_LINE,
    "art9_2": rules_pb2.ATTESTATION_ITEM_POLICY_KNOWLEDGE,
    "art9_3": rules_pb2.ATTESTATION_ITEM_INTEGRITY,
    "art9_4": rules_pb2.ATTESTATION_ITEM_ABILITY,
    "health": rules_pb2.ATTESTATION_ITEM_HEALTH,
}
STATUS = {
    "active": rules_pb2.SUPERVISOR_STATUS_ACTIVE,
    "expired": rules_pb2.SUPERVISOR_STATUS_EXPIRED,
    "suspended": rules_pb2.SUPERVISOR_STATUS_SUSPENDED,
    "revoked": rules_pb2.SUPERVISOR_STATUS_REVOKED,
}


@dataclass(frozen=True)
class SupervisorFacts:
    """What the rules service needs, read from the registry in one transaction."""

    name: str
    male: bool
    birth_date: dt.date
    type: str
    level: str
    district_code: str
    institution: str
    status: str
    term_start: dt.date | None
    term_end: dt.date | None
    training_passed: bool
    training_date: dt.date | None
    attestations: tuple[tuple[str, str, dt.date], ...]  # satisfied items only: (item, by, date)


def facts_of(
    sup: m.Supervisor, appt: m.Appointment | None, attestations, institution: str, trained: Training | None
) -> SupervisorFacts:
    """`trained`: the passed training on or before the term start (第十条, derived from the records, D22)."""
    return SupervisorFacts(
        name=f"supervisors/{sup.id}", male=sup.male, birth_date=sup.birth_date, type=sup.type, level=sup.level,
        district_code=sup.district_code, institution=institution, status=sup.status,
        term_start=appt.term_start if appt else None, term_end=appt.term_end if appt else None,
        training_passed=trained is not None, training_date=trained.assessed_date if trained else None,
        attestations=tuple((a.item, a.attested_by, a.attested_date) for a in attestations if a.satisfied),
    )  # fmt: skip


def to_request(f: SupervisorFacts, as_of: dt.date, purpose: str) -> rules_pb2.CheckEligibilityRequest:
    facts = rules_pb2.SupervisorFacts(
        name=f.name,
        gender=rules_pb2.GENDER_MALE if f.male else rules_pb2.GENDER_FEMALE,
        birth_date=f.birth_date.isoformat(),
        kind=rules_pb2.SUPERVISOR_KIND_EXTERNAL if f.type == "external" else rules_pb2.SUPERVISOR_KIND_INTERNAL,
        level={"city": rules_pb2.SUPERVISOR_LEVEL_CITY, "district": rules_pb2.SUPERVISOR_LEVEL_DISTRICT}.get(
            f.level, rules_pb2.SUPERVISOR_LEVEL_UNSPECIFIED
        ),
        district_code=f.district_code if f.type == "external" else "",
        institution=f.institution,
        status=STATUS.get(f.status, rules_pb2.SUPERVISOR_STATUS_UNSPECIFIED),
        term_start_date=f.term_start.isoformat() if f.term_start else "",
        term_end_date=f.term_end.isoformat() if f.term_end else "",
        training_passed=f.training_passed,
        training_passed_date=f.training_date.isoformat() if f.training_date else "",
        attestations=[
            rules_pb2.Attestation(item=ITEM[item], attested_by=by, attested_date=d.isoformat())
            for item, by, d in f.attestations
        ],
    )
    return rules_pb2.CheckEligibilityRequest(supervisor=facts, as_of_date=as_of.isoformat(), purpose=PURPOSE[purpose])


def _cite(message: str, article: str) -> str:
    """The rules service's Chinese message, with its article appended unless it already cites it."""
    return message if not article or article in message else f"{message}（{article}）"


class RulesEligibility:
    """Asks bjsv.rules.v1.RulesService/CheckEligibility; returns the decision name when allowed."""

    def __init__(self, target: str, *, timeout: float = 5.0) -> None:
        self._target = target
        self._timeout = timeout
        self._channel: grpc.aio.Channel | None = None
        self._stub: rules_pb2_grpc.RulesServiceStub | None = None

    def _get_stub(self) -> rules_pb2_grpc.RulesServiceStub:
        # created on first use, inside the serving event loop (an aio channel is bound to its loop)
        if self._stub is None:
            self._channel = clients.channel(self._target)
            self._stub = rules_pb2_grpc.RulesServiceStub(self._channel)
        return self._stub

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close(grace=None)
            self._channel = self._stub = None

    async def decide(self, facts: SupervisorFacts, *, as_of: dt.date, purpose: str) -> str:
        response = await invoke(
            self._get_stub().CheckEligibility(to_request(facts, as_of, purpose), timeout=self._timeout),
            dependency="rules",
        )
        decision = response.decision
        if decision.outcome == rules_pb2.OUTCOME_DENY:
            blocking = [f for f in decision.findings if f.severity == rules_pb2.SEVERITY_BLOCKING] or list(
                decision.findings
            )
            raise FailedPrecondition(
                "NOT_ELIGIBLE",
                [
                    PreconditionViolation(f.rule_id, f.subject or facts.name, _cite(f.message, f.article))
                    for f in blocking
                ],
                metadata={"decision": decision.name},
            )
        return decision.name
