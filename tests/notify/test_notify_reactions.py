"""What each registry event causes (pure reactions): cases (第二十六条/第二十七条, D13), immediate reports
(第二十四条), half-month reports (第二十四条, D10), member replacement and cancellation (第二十三条)."""

import datetime as dt

from common.clock import SHANGHAI
from common.workdays import WorkdayCalendar
from services.notify.domain import messages, reactions
from services.notify.domain.model import CITY_CENTRE, Form, Kind, case_group, deadline_group
from services.notify.domain.reactions import DispatchInfo, Party
from services.notify.domain.schedule import SchedulePolicy

CAL = WorkdayCalendar()
POLICY = SchedulePolicy()
NOW = dt.datetime(2025, 9, 30, 18, tzinfo=SHANGHAI)


def info(members=("supervisors/1", "supervisors/2"), external=True):
    return DispatchInfo(
        dispatch="dispatches/9",
        plan_name="电工四级",
        institution=Party("institutions/1", "某机构"),
        dispatching_agency=Party("agencies/08", "海淀区职业技能鉴定管理机构"),
        members=tuple(Party(m, m[-1] + "号") for m in members),
        supervision_start=dt.date(2025, 9, 30),
        supervision_end=dt.date(2025, 9, 30),
        record_due=dt.date(2025, 10, 14),
        feedback_due=dt.date(2025, 10, 14),
        external=external,
    )


def test_penalty_recommendation_awaits_decision_and_is_reannounced_after_5_working_days_d13():
    r = reactions.on_case_awaiting_decision(
        case="cases/3",
        recipients=[CITY_CENTRE, "agencies/08"],
        target_name="某评价机构",
        recommendation="通报批评并责令改正",
        article="第二十六条（一）",
        opened_on=dt.date(2025, 9, 30),
        round_=0,
        calendar=CAL,
        policy=POLICY,
    )
    assert [n.recipient for n in r.notifications] == [CITY_CENTRE, "agencies/08"]
    assert all(n.kind == Kind.PENALTY_DECISION_PENDING and "第二十六条" in n.body for n in r.notifications)
    assert {t.fire_at.date() for t in r.timers} == {dt.date(2025, 10, 14)}
    assert all(t.group == case_group("cases/3") for t in r.timers)
    assert reactions.on_case_decided("cases/3").cancel_groups == [case_group("cases/3")]


def test_escalated_case_is_announced_again_with_a_new_key_d13():
    args = dict(
        case="cases/3",
        recipients=[CITY_CENTRE],
        target_name="某评价机构",
        recommendation="处分建议",
        article="第二十六条",
        opened_on=dt.date(2025, 9, 30),
        calendar=CAL,
        policy=POLICY,
    )
    first = reactions.on_case_awaiting_decision(round_=0, **args).notifications[0]
    again = reactions.on_case_awaiting_decision(round_=1, **args).notifications[0]
    assert first.key != again.key


def test_supervisor_private_gain_case_cites_article_27():
    d = messages.penalty_decision_pending(
        case="cases/4",
        recipient="agencies/08",
        target_name="外督员甲",
        recommendation="取消外督员资格",
        article="第二十七条",
        opened_on=dt.date(2025, 9, 30),
    )
    assert d.articles == ("第二十七条",) and "利用职务谋取私利" in d.body


def test_period_report_goes_to_city_centre_citing_article_24_d10():
    d = messages.period_report(
        period="reports/08/2025-10-1",
        agency="agencies/08",
        agency_name="海淀区",
        period_start=dt.date(2025, 10, 1),
        period_end=dt.date(2025, 10, 15),
        summary="督导3次",
    )
    assert d.recipient == CITY_CENTRE and d.kind == Kind.PERIOD_REPORT
    assert "2025年10月1日至2025年10月15日" in d.body and "每半个月向市鉴定管理中心报送" in d.body


def test_dispatch_cancelled_stops_every_clock_of_the_dispatch():
    r = reactions.on_dispatch_cancelled("dispatches/9")
    assert r.cancel_group_prefixes == ["deadline/dispatches/9/"]


def test_member_replaced_moves_the_clocks_to_the_new_member_art23():
    new_team = info(members=("supervisors/1", "supervisors/3"))
    r = reactions.on_member_replaced(new_team, "supervisors/2", Party("supervisors/3", "3号"), CAL, POLICY, NOW)
    assert deadline_group("dispatches/9", Form.FEEDBACK, "supervisors/2") in r.cancel_groups
    recipients = {t.draft.recipient for t in r.timers if t.draft.kind == Kind.DEADLINE_REMINDER}
    assert recipients == {"supervisors/1", "supervisors/3", "institutions/1"}
    assert [n.recipient for n in r.notifications] == ["supervisors/3"]


def test_internal_dispatch_has_no_annex4_clock_art25():
    r = reactions.on_dispatch_created(info(external=False), CAL, POLICY, NOW)
    assert all("/feedback/" not in t.key for t in r.timers)
    assert {n.recipient for n in r.notifications} == {"supervisors/1", "supervisors/2"}


def test_feedback_reminder_names_the_supervisor_it_is_about():
    r = reactions.on_dispatch_created(info(), CAL, POLICY, NOW)
    fb = [t.draft for t in r.timers if "/feedback/supervisors/2/" in t.key and t.draft.kind == Kind.DEADLINE_REMINDER]
    assert fb and "关于外督员2号的《北京市技能人才评价外督员情况反馈表》" in fb[0].body
    assert fb[0].recipient == "institutions/1"
