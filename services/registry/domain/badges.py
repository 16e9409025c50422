"""Badge rules: who may get a badge (第十一条, 第十二条), one badge per term, revocation (D2), the title
line (附件2) and the status shown at the exam door (第十七条)."""

from __future__ import annotations

import datetime as dt

from . import terms
from .appointments import STATUS_ZH
from .problems import Conflict, Problem, ProblemsError, Refused
from .supervisors import Status


def check_issuable(appointment: str, status: Status, term_end: dt.date, issue_date: dt.date) -> None:
    """Only an appointment in force on the issue date gets a badge."""
    if status != Status.ACTIVE:
        raise Refused(
            "APPOINTMENT_NOT_ACTIVE",
            "registry.badge.active-appointment",
            appointment,
            f"只有在聘的质量督导员可颁发证卡，当前状态为{STATUS_ZH[status]}（第十一条、第十二条）",
        )
    if terms.is_expired(term_end, issue_date):
        raise Refused("TERM_ENDED", "registry.badge.within-term", appointment,
                      f"核发日期{issue_date.isoformat()}已超出聘期（至{term_end.isoformat()}，第十三条）")  # fmt: skip


def check_explicit_serial(supervisor_type: str, explicit_serial: int) -> None:
    """An institution may choose its internal serials (D1); external codes are sequential (第十一条)."""
    if explicit_serial < 0:
        raise ProblemsError([Problem("explicit_serial", "SERIAL_OUT_OF_RANGE", "证卡序列码不能为负数")])
    if explicit_serial and supervisor_type != "internal":
        why = "外督员证卡由市鉴定管理中心按顺序统一赋码，不能指定序列码（第十一条、附件1）"
        raise ProblemsError([Problem("explicit_serial", "EXPLICIT_SERIAL_EXTERNAL", why)])


def refuse_if_issued(existing_codes: list[str], replace_existing: bool) -> None:
    """One badge per term; a replacement must say so (the old one is then revoked, its code never reused, D2)."""
    if existing_codes and not replace_existing:
        code = existing_codes[0]
        why = f"本聘期已颁发证卡{code}；补发须注明换发（replace_existing）"
        raise Conflict("BADGE_ALREADY_ISSUED", why, field="appointment", resource=f"badges/{code}")


def check_revocable(code: str, revoked: bool) -> None:
    if revoked:
        raise Refused("BADGE_ALREADY_REVOKED", "registry.badge.revoke-once", f"badges/{code}", "该证卡已作废")


def title(supervisor_type: str) -> str:
    """附件2 card title line."""
    return "质量督导员 (外督员)" if supervisor_type == "external" else "质量督导员 (内督员)"


def door_status(revoked: bool, valid_until: dt.date, appointment_status: str, as_of: dt.date) -> str:
    """Status at the exam door: revoked > suspended > expired (term ended or validity passed) > active."""
    if revoked or appointment_status == Status.REVOKED:
        return "revoked"
    if appointment_status == Status.SUSPENDED:
        return "suspended"
    if appointment_status == Status.EXPIRED or as_of > valid_until:
        return "expired"
    return "active"
