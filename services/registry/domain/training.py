"""Training records (培训考核, 第十条–第十二条): validation and the values derived from them.

第十条: a person meeting 第九条 may be appointed 经培训考核合格. 第十一条: external supervisors are trained by
the city or a district agency; 第十二条: internal supervisors by their own institution. So an appointment
needs a passed training dated on or before the term start (D22 in the service README), and the
training-passed fact sent to the rules service is derived from the records, never a flag.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from .districts import CITY_CODE, DISTRICTS
from .problems import Problem, ProblemsError, Refused
from .supervisors import SupervisorType, Training, parse_date

TEXT_MAX = 200
CERTIFICATE_MAX = 60


@dataclass(frozen=True)
class TrainingInput:
    """A training as entered (strings, so the edge can name the exact field)."""

    course: str
    trainer: str
    assessed_date: str
    passed: bool
    certificate_number: str


def _trainer_problem(kind: SupervisorType, institution: str, trainer: str) -> Problem | None:
    """第十一条 / 第十二条: who may train whom."""
    if kind is SupervisorType.EXTERNAL:
        code = trainer.removeprefix("agencies/")
        if trainer.startswith("agencies/") and (code == CITY_CODE or code in DISTRICTS):
            return None
        why = "外督员由市、区鉴定管理机构培训（第十一条），培训单位须为 agencies/A 或 agencies/<区代码>"
    else:
        if trainer == institution:
            return None
        why = f"内督员由本评价机构培训（第十二条），培训单位须为 {institution}"
    return Problem("training.assessed_by", "TRAINER_NOT_AUTHORISED", why)


def validate_training(inp: TrainingInput, *, kind: SupervisorType, institution: str, today: dt.date) -> Training:
    """A training record for RecordTraining: course, the trainer 第十一条/第十二条 names, a date not in the
    future and, when passed (考核合格), the certificate number."""
    problems: list[Problem] = []
    course, certificate = inp.course.strip(), inp.certificate_number.strip()
    if not course:
        problems.append(Problem("training.course", "COURSE_REQUIRED", "请填写培训课程（第十条）"))
    elif len(course) > TEXT_MAX:
        problems.append(Problem("training.course", "COURSE_TOO_LONG", f"培训课程不得超过{TEXT_MAX}字"))
    if (p := _trainer_problem(kind, institution, inp.trainer.strip())) is not None:
        problems.append(p)
    day, date_problems = parse_date(inp.assessed_date, "training.assessed_date", "培训考核日期")
    problems += date_problems
    if day and day > today:
        problems.append(Problem("training.assessed_date", "DATE_IN_FUTURE", "培训考核日期不能晚于今天"))
    if inp.passed and not certificate:
        why = "培训考核合格须填写培训合格证书编号（第十条）"
        problems.append(Problem("training.certificate_number", "CERTIFICATE_REQUIRED", why))
    elif len(certificate) > CERTIFICATE_MAX:
        why = f"证书编号不得超过{CERTIFICATE_MAX}个字符"
        problems.append(Problem("training.certificate_number", "CERTIFICATE_TOO_LONG", why))
    if problems or day is None:
        raise ProblemsError(problems)
    return Training(inp.passed, inp.trainer.strip(), day, course, certificate)


def passed_on(trainings: Iterable[Training], day: dt.date) -> Training | None:
    """The latest training passed on or before `day` (第十条 培训考核合格), if any."""
    done = [t for t in trainings if t.passed and t.assessed_date <= day]
    return max(done, key=lambda t: t.assessed_date) if done else None


def check_term_start(
    supervisor: str, trainings: list[Training], *, start: dt.date, today: dt.date, max_backdate_days: int | None
) -> None:
    """D22: a term starts at the earliest on the day of a passed training (第十条) and at most
    `max_backdate_days` before today (None: no bound, the operator's bulk seed)."""
    if max_backdate_days is not None and start < today - dt.timedelta(days=max_backdate_days):
        raise ProblemsError([Problem("start_date", "START_TOO_EARLY",
                                     f"聘期开始日期不得早于今天前{max_backdate_days}天（D22）")])  # fmt: skip
    if passed_on(trainings, start) is None:
        later = [t.assessed_date for t in trainings if t.passed]
        why = (
            f"聘期开始日期{start.isoformat()}早于培训考核合格日期{min(later).isoformat()}，聘期不能早于培训考核合格（第十条）"
            if later
            else "未经培训考核合格，不得聘任为质量督导员（第十条）"
        )
        raise Refused("TRAINING_NOT_PASSED", "registry.appointment.training-passed", supervisor, why)
