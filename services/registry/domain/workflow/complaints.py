"""第二十二条(九)(十): public complaints (群众举报) investigated with the city centre, and major problems (重大问题)
reported by a dispatched supervisor with suggestions. Validation and the complaint's states."""

from __future__ import annotations

from services.registry.domain.problems import Problem, ProblemsError, Refused
from services.registry.domain.workflow.policy import DEFAULT_POLICY, WorkflowPolicy

RECEIVED, INVESTIGATING, CLOSED = "received", "investigating", "closed"
SOURCE_MAX = 100
SUBJECT_PREFIXES = ("institutions/", "supervisors/")


def _text(problems: list[Problem], field: str, value: str, label: str, limit: int, *, required: bool) -> None:
    if required and not value.strip():
        problems.append(Problem(field, f"{field.rsplit('.', 1)[-1].upper()}_REQUIRED", f"请填写{label}"))
    elif len(value) > limit:
        problems.append(Problem(field, f"{field.rsplit('.', 1)[-1].upper()}_TOO_LONG", f"{label}不能超过{limit}字"))


def validate_complaint(source: str, subject: str, content: str, *, policy: WorkflowPolicy = DEFAULT_POLICY) -> None:
    problems: list[Problem] = []
    _text(problems, "complaint.source", source, "举报来源", SOURCE_MAX, required=True)
    if not subject.startswith(SUBJECT_PREFIXES):
        why = "被举报对象须为评价机构（institutions/…）或督导员（supervisors/…）（第二十二条第（九）项）"
        problems.append(Problem("complaint.subject", "SUBJECT_REQUIRED", why))
    _text(problems, "complaint.content", content, "举报内容", policy.max_text_length, required=True)
    if problems:
        raise ProblemsError(problems)


def next_state(
    name: str, state: str, *, handling: str, result: str, close: bool, policy: WorkflowPolicy = DEFAULT_POLICY
) -> str:
    """The state after recording handling/result: a closed complaint stays closed; closing needs a result."""
    if state == CLOSED:
        raise Refused("COMPLAINT_CLOSED", "bjsv.complaint.open", name, "该举报已办结，不能再修改处理情况")
    problems: list[Problem] = []
    _text(problems, "handling", handling, "处理情况", policy.max_text_length, required=not close)
    _text(problems, "result", result, "核实结果", policy.max_text_length, required=close)
    if problems:
        raise ProblemsError(problems)
    return CLOSED if close else INVESTIGATING


def validate_major_problem(findings: str, suggestions: str, *, policy: WorkflowPolicy = DEFAULT_POLICY) -> None:
    problems: list[Problem] = []
    _text(problems, "report.findings", findings, "重大问题情况", policy.max_text_length, required=True)
    _text(problems, "report.suggestions", suggestions, "建议", policy.max_text_length, required=False)
    if problems:
        raise ProblemsError(problems)
