"""第十六条 conflict declarations: before acting on a dispatch, each supervisor declares any relative among the
candidates or examiners and any other interest in the supervised activity (an empty list declares none).
Validation here; the recusal decision is the rules service's (D9)."""

from __future__ import annotations

from dataclasses import dataclass

from services.registry.domain import id_number
from services.registry.domain.problems import Problem, ProblemsError
from services.registry.domain.workflow.plans import person_key
from services.registry.domain.workflow.policy import DEFAULT_POLICY, WorkflowPolicy

KINDS = ("relative_candidate", "relative_examiner", "other_interest")
RELATIVES = KINDS[:2]
# What an "other interest" may name: the institution, the plan or one of its sessions.
INTEREST_PREFIXES = ("institutions/", "plans/")


@dataclass(frozen=True)
class DeclaredConflict:
    kind: str  # one of KINDS
    counterpart: str  # person key (relatives) or resource name (interests)
    description: str


def validate_conflicts(
    items: list[tuple[str, str, str]], *, policy: WorkflowPolicy = DEFAULT_POLICY
) -> list[DeclaredConflict]:
    """items: (kind, counterpart, description). A relative's counterpart is the person's ID number, kept only as
    the person key the rules service matches examiners and candidates by; an interest names a resource."""
    out: list[DeclaredConflict] = []
    problems: list[Problem] = []
    for i, (kind, counterpart, description) in enumerate(items):
        f = f"declaration.conflicts[{i}]"
        counterpart = counterpart.strip()
        if kind not in KINDS:
            why = "请选择申报事项：考生亲属、考评人员亲属或其他利害关系（第十六条）"
            problems.append(Problem(f"{f}.kind", "CONFLICT_KIND_REQUIRED", why))
            continue
        if kind in RELATIVES:
            try:
                id_number.parse(counterpart, field=f"{f}.counterpart")
                counterpart = person_key(counterpart)
            except ProblemsError as e:
                problems += e.problems
        elif not counterpart.startswith(INTEREST_PREFIXES):
            why = "其他利害关系须指明评价机构、评价计划或场次（institutions/…、plans/…）"
            problems.append(Problem(f"{f}.counterpart", "COUNTERPART_RESOURCE", why))
        if len(description) > policy.max_text_length:
            why = f"说明不能超过{policy.max_text_length}字"
            problems.append(Problem(f"{f}.description", "DESCRIPTION_TOO_LONG", why))
        out.append(DeclaredConflict(kind, counterpart, description.strip()))
    if problems:
        raise ProblemsError(problems)
    return out
