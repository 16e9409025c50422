"""Message templates in Chinese; each names the article behind it (identifiers stay English).

Every builder returns a :class:`NotificationDraft` whose ``key`` is a business key, so building the
same message twice (a redelivered event, a second replica) yields the same idempotency key.
"""

from __future__ import annotations

import datetime as dt

from services.notify.domain.articles import cite
from services.notify.domain.model import (
    CITY_CENTRE,
    FORM_TITLES,
    AppointmentTerm,
    Form,
    FormDeadline,
    Kind,
    NotificationDraft,
    agency_name,
)

ART_23 = "第二十三条"
ART_24 = "第二十四条"


def zh_date(d: dt.date) -> str:
    """2025-10-14 → 2025年10月14日."""
    return f"{d.year}年{d.month}月{d.day}日"


def _plan(name: str) -> str:
    return f"“{name}”" if name else "（未命名评价计划）"


def dispatch_created(
    *,
    dispatch: str,
    recipient: str,
    plan_name: str,
    institution_name: str,
    agency_name: str,
    supervisor_names: list[str],
    start: dt.date | None,
    end: dt.date | None,
    record_due: dt.date | None,
    feedback_due: dt.date | None,
    for_institution: bool,
) -> NotificationDraft:
    when = ""
    if start and end:
        when = f"，督导时间{zh_date(start)}至{zh_date(end)}" if start != end else f"，督导日期{zh_date(start)}"
    team = "、".join(supervisor_names) if supervisor_names else "外督员"
    if for_institution:
        due = f"请于{zh_date(feedback_due)}前" if feedback_due else "请在当次督导工作结束后5个工作日内"
        body = (
            f"{agency_name or '委派单位'}已委派外督员{team}对贵机构评价计划{_plan(plan_name)}进行质量督导{when}。"
            f"{due}填写{FORM_TITLES[Form.FEEDBACK]}提交委派单位。{cite(ART_23)}"
        )
    else:
        due = f"请于{zh_date(record_due)}前" if record_due else "请在当次督导工作结束后5个工作日内"
        body = (
            f"您已被{agency_name or '委派单位'}委派对{institution_name or '评价机构'}评价计划{_plan(plan_name)}"
            f"进行质量督导{when}（督导组：{team}）。"
            f"{due}填写{FORM_TITLES[Form.RECORD]}提交委派单位。{cite(ART_23)}"
        )
    return NotificationDraft(
        key=f"{Kind.DISPATCH_CREATED}/{dispatch}/{recipient}",
        recipient=recipient,
        kind=Kind.DISPATCH_CREATED,
        title=f"督导委派通知：{plan_name or dispatch}",
        body=body,
        articles=("第十四条", ART_23),
        subject=dispatch,
        due_date=feedback_due if for_institution else record_due,
    )


def _dl_key(kind: Kind, deadline: FormDeadline, *rest: object) -> str:
    parts = [str(kind), deadline.dispatch, deadline.form.value, deadline.about or "team", *map(str, rest)]
    return "/".join(parts)


def submission_received(
    *, deadline: FormDeadline, submitted: str, submitted_on: dt.date, late: bool, late_workdays: int = 0
) -> NotificationDraft:
    if deadline.due_date and late:
        timing = (
            f"，已超过{zh_date(deadline.due_date)}的提交期限{late_workdays}个工作日"
            if late_workdays
            else f"，已超过{zh_date(deadline.due_date)}的提交期限"
        )
    elif deadline.due_date:
        timing = f"，在{zh_date(deadline.due_date)}的提交期限内"
    else:
        timing = ""
    body = (
        f"已收到{deadline.owner_name}提交的评价计划{_plan(deadline.plan_name)}{deadline.form_label}"
        f"（{submitted}，{zh_date(submitted_on)}提交{timing}）。{cite(ART_23)}"
    )
    return NotificationDraft(
        key=_dl_key(Kind.SUBMISSION_RECEIVED, deadline, submitted),
        recipient=deadline.dispatching_agency,
        kind=Kind.SUBMISSION_RECEIVED,
        title=f"督导材料已收到：{deadline.plan_name or deadline.dispatch}",
        body=body,
        articles=(ART_23,),
        subject=submitted or deadline.dispatch,
        due_date=deadline.due_date,
    )


def deadline_reminder(deadline: FormDeadline, recipient: str, workdays_left: int) -> NotificationDraft:
    assert deadline.due_date is not None
    body = (
        f"评价计划{_plan(deadline.plan_name)}的督导工作已结束，{deadline.form_label}应于"
        f"{zh_date(deadline.due_date)}前提交委派单位，距截止还有{workdays_left}个工作日。{cite(ART_23)}"
    )
    return NotificationDraft(
        key=_dl_key(Kind.DEADLINE_REMINDER, deadline, recipient, deadline.due_date),
        recipient=recipient,
        kind=Kind.DEADLINE_REMINDER,
        title=f"提交提醒：{FORM_TITLES[deadline.form]}截止日期{zh_date(deadline.due_date)}",
        body=body,
        articles=(ART_23,),
        subject=deadline.dispatch,
        due_date=deadline.due_date,
    )


def deadline_due_today(deadline: FormDeadline, recipient: str) -> NotificationDraft:
    assert deadline.due_date is not None
    body = (
        f"今天（{zh_date(deadline.due_date)}）是评价计划{_plan(deadline.plan_name)}{deadline.form_label}"
        f"提交委派单位的截止日期，请及时提交。{cite(ART_23)}"
    )
    return NotificationDraft(
        key=_dl_key(Kind.DEADLINE_DUE_TODAY, deadline, recipient, deadline.due_date),
        recipient=recipient,
        kind=Kind.DEADLINE_DUE_TODAY,
        title=f"今日截止：{FORM_TITLES[deadline.form]}",
        body=body,
        articles=(ART_23,),
        subject=deadline.dispatch,
        due_date=deadline.due_date,
    )


def deadline_overdue(deadline: FormDeadline, on: dt.date, workdays_late: int, seq: int) -> NotificationDraft:
    assert deadline.due_date is not None
    body = (
        f"{deadline.owner_name}未在{zh_date(deadline.due_date)}前提交评价计划"
        f"{_plan(deadline.plan_name)}的{deadline.form_label}，截至{zh_date(on)}已逾期{workdays_late}个工作日。"
        f"{cite(ART_23)}"
    )
    return NotificationDraft(
        key=_dl_key(Kind.DEADLINE_OVERDUE, deadline, seq),
        recipient=deadline.dispatching_agency,
        kind=Kind.DEADLINE_OVERDUE,
        title=f"逾期未提交：{FORM_TITLES[deadline.form]}（{deadline.owner_name}）",
        body=body,
        articles=(ART_23,),
        subject=deadline.dispatch,
        due_date=deadline.due_date,
    )


def immediate_report(
    *,
    report: str,
    reporting_agency: str,
    reporting_agency_name: str,
    summary: str,
    institution_name: str,
    articles: tuple[str, ...],
    document_id: str = "",
) -> NotificationDraft:
    who = reporting_agency_name or agency_name(reporting_agency)
    inst = f"（被督导机构：{institution_name}）" if institution_name else ""
    body = f"{who}报告严重违规情况{inst}：{(summary or '详见报告').rstrip('。')}。{cite(ART_24)}"
    return NotificationDraft(
        key=f"{Kind.IMMEDIATE_REPORT}/{report}",
        recipient=CITY_CENTRE,
        kind=Kind.IMMEDIATE_REPORT,
        title=f"严重违规情况报告：{institution_name or report}",
        body=body,
        articles=tuple(dict.fromkeys((ART_24, *articles))),
        subject=report,
        document_id=document_id,
    )


def period_report(
    *,
    period: str,
    agency: str,
    agency_name: str,
    period_start: dt.date,
    period_end: dt.date,
    document_id: str = "",
    summary: str = "",
    recipient: str = CITY_CENTRE,
) -> NotificationDraft:
    body = (
        f"{agency_name or agency}报送{zh_date(period_start)}至{zh_date(period_end)}"
        f"辖区技能等级认定质量督导结果{('：' + summary) if summary else ''}"
        f"{'（报告PDF见附件）' if document_id else ''}。{cite(ART_24)}"
    )
    return NotificationDraft(
        key=f"{Kind.PERIOD_REPORT}/{period}/{recipient}",
        recipient=recipient,
        kind=Kind.PERIOD_REPORT,
        title=f"半月督导结果报送：{agency_name or agency} {zh_date(period_start)}—{zh_date(period_end)}",
        body=body,
        articles=(ART_24,),
        subject=period,
        document_id=document_id,
    )


def appointment_expiring(term: AppointmentTerm, days_before: int) -> NotificationDraft:
    body = (
        f"质量督导员{term.supervisor_name or term.supervisor}的聘期将于{zh_date(term.term_end)}届满"
        f"（还有{days_before}天），聘期届满自动解聘；如需续聘请及时办理。{cite('第十三条')}"
    )
    return NotificationDraft(
        key=f"{Kind.APPOINTMENT_EXPIRING}/{term.supervisor}/{term.term_end}/{days_before}",
        recipient=term.appointing_org,
        kind=Kind.APPOINTMENT_EXPIRING,
        title=f"聘期即将届满（{days_before}天）：{term.supervisor_name or term.supervisor}",
        body=body,
        articles=("第十三条",),
        subject=term.supervisor,
        due_date=term.term_end,
    )


def age_limit_in_term(
    term: AppointmentTerm, ineligible_from: dt.date, limit_years: int, advance: bool
) -> NotificationDraft:
    sex = "男性" if term.gender == "male" else "女性"
    lead = "即将" if advance else "将在聘期内"
    body = (
        f"质量督导员{term.supervisor_name or term.supervisor}（{sex}）{lead}超过{limit_years}周岁："
        f"自{zh_date(ineligible_from)}起不再符合任职条件，早于聘期届满日{zh_date(term.term_end)}，"
        f"此后不得委派。{cite('第九条')}"
    )
    suffix = "advance" if advance else "term"
    return NotificationDraft(
        key=f"{Kind.AGE_LIMIT_IN_TERM}/{term.supervisor}/{ineligible_from}/{suffix}",
        recipient=term.appointing_org,
        kind=Kind.AGE_LIMIT_IN_TERM,
        title=f"年龄条件提示：{term.supervisor_name or term.supervisor}",
        body=body,
        articles=("第九条",),
        subject=term.supervisor,
        due_date=ineligible_from,
    )


def badge_filed(
    *, badge: str, badge_code: str, institution: str, supervisor_name: str, filed_on: dt.date
) -> NotificationDraft:
    body = (
        f"内督员{supervisor_name}的证卡（编号{badge_code}）已于{zh_date(filed_on)}报市鉴定管理中心备案，"
        f"内督证卡仅限本评价机构内部使用。{cite('第十二条')}"
    )
    return NotificationDraft(
        key=f"{Kind.BADGE_FILED}/{badge}",
        recipient=institution,
        kind=Kind.BADGE_FILED,
        title=f"内督员证卡备案确认：{badge_code}",
        body=body,
        articles=("第十二条",),
        subject=badge,
    )


def penalty_decision_pending(
    *,
    case: str,
    recipient: str,
    target_name: str,
    recommendation: str,
    article: str,
    opened_on: dt.date,
    reminder: bool = False,
    remind_on: dt.date | None = None,
) -> NotificationDraft:
    base_article = "第二十七条" if article.startswith("第二十七条") else "第二十六条"
    lead = f"（提醒：截至{zh_date(remind_on)}尚未作出决定）" if reminder and remind_on else ""
    body = (
        f"案件{case}{lead}：对{target_name}的处理建议为“{recommendation}”（{article}），"
        f"于{zh_date(opened_on)}提出，待有权人员作出决定。{cite(base_article)}"
    )
    key = f"{Kind.PENALTY_DECISION_PENDING}/{case}/{recipient}" + (f"/reminder/{remind_on}" if reminder else "")
    return NotificationDraft(
        key=key,
        recipient=recipient,
        kind=Kind.PENALTY_DECISION_PENDING,
        title=f"处理建议待决定：{target_name}",
        body=body,
        articles=tuple(dict.fromkeys((article, base_article))),
        subject=case,
    )
