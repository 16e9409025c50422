"""Penalty ladders of 第二十六条 (institutions) and 第二十七条 (external supervisors), D13."""

from __future__ import annotations

import datetime as dt

import pytest
from rules_helpers import DAY

from services.rules.domain import model as m

D = dt.date
INST, SUP = m.SUBJECT_INSTITUTION, m.SUBJECT_SUPERVISOR


def prior(rung: int, decided: dt.date, trigger: int = 1, deadline=None, corrected=None) -> m.PriorCase:
    return m.PriorCase(f"cases/{decided.isoformat()}", trigger, decided, rung, deadline, corrected)


async def evaluate(decider, catalog, engine_pool, kind, trigger, history=(), serious=False):
    subject = "institutions/1100012001" if kind == INST else "supervisors/42"
    item = m.PenaltyInput(kind, subject, tuple(history), trigger, DAY, serious, DAY)
    return (await decider.penalty(catalog, engine_pool, [item]))[0]


ART26 = ["通报批评并责令改正", "向其主管部门提出给予处分的建议", "取消其职业技能等级认定工作资格"]
ART27 = ["批评教育", "暂停督导工作", "取消其外督员资格"]  # 第二十七条 as worded

CASES = [
    # id, subject kind, trigger, history, official says serious, rung, immediate report
    ("art26_1_refuse_information_first_offence", INST, 1, [], False, 1, False),
    ("art26_2_obstruct_reporting_first_offence", INST, 2, [], False, 1, False),
    ("art26_3_refuse_improvement_first_offence", INST, 3, [], False, 1, False),
    ("art26_4_falsification_serious_by_default_D13", INST, 4, [], False, 2, True),
    ("art26_5_retaliation_serious_by_default_D13", INST, 5, [], False, 2, True),
    ("art26_6_other_first_offence", INST, 6, [], False, 1, False),
    ("art26_repeat_in_window_climbs_D13", INST, 1, [prior(1, D(2024, 1, 10))], False, 2, False),
    ("art26_repeat_after_second_rung_disqualifies_D13", INST, 2, [prior(2, D(2023, 12, 1))], False, 3, False),
    ("art26_repeat_outside_window_restarts_D13", INST, 1, [prior(1, D(2023, 6, 2))], False, 1, False),
    ("art26_repeat_on_window_edge_climbs_D13", INST, 1, [prior(1, D(2023, 6, 4))], False, 2, False),
    (
        "art26_uncorrected_order_escalates_D13",
        INST,
        6,
        [prior(1, D(2022, 9, 1), deadline=D(2022, 10, 1))],
        False,
        2,
        False,
    ),
    (
        "art26_order_corrected_in_time_no_escalation",
        INST,
        6,
        [prior(1, D(2022, 9, 1), deadline=D(2022, 10, 1), corrected=D(2022, 9, 20))],
        False,
        1,
        False,
    ),
    (
        "art26_order_deadline_not_yet_passed",
        INST,
        6,
        [prior(1, D(2024, 6, 1), deadline=D(2024, 7, 1))],
        False,
        2,
        False,
    ),
    ("art26_assessed_serious_second_rung", INST, 1, [], True, 2, True),
    ("art26_4_serious_repeat_disqualifies", INST, 4, [prior(2, D(2024, 3, 1), trigger=4)], False, 3, True),
    ("art27_neglect_first_offence_criticism", SUP, 7, [], False, 1, False),
    ("art27_neglect_repeat_suspension", SUP, 7, [prior(1, D(2024, 2, 1), trigger=7)], False, 2, False),
    ("art27_neglect_third_time_revocation", SUP, 7, [prior(2, D(2024, 4, 1), trigger=7)], False, 3, False),
    ("art27_assessed_serious_suspension", SUP, 7, [], True, 2, False),
    ("art27_private_gain_revocation_D13", SUP, 8, [], False, 3, False),
]


@pytest.mark.parametrize(
    ("kind", "trigger", "history", "serious", "rung", "report"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_ladder(decider, catalog, engine_pool, kind, trigger, history, serious, rung, report):
    d = await evaluate(decider, catalog, engine_pool, kind, trigger, history, serious)
    rec = d.recommendation
    assert d.outcome == m.ADVISE
    assert rec.rung == rung
    assert rec.sanction_text == (ART26 if kind == INST else ART27)[rung - 1]
    assert rec.article == ("第二十六条" if kind == INST else "第二十七条")
    # one numbering with bjsv.registry.v1.PenaltyRung: 1 no action, 2..4 第二十六条, 5..7 第二十七条
    assert rec.sanction == (1 + rung if kind == INST else 4 + rung)
    assert rec.immediate_report is report
    assert d.findings and all(f.severity == m.ADVISORY for f in d.findings)


async def test_not_yet_passed_deadline_is_not_refusal(decider, catalog, engine_pool):
    # the 2024-06-01 case counts as a repeat (climb) but its order is not overdue
    d = await evaluate(decider, catalog, engine_pool, INST, 6, [prior(1, D(2024, 6, 1), deadline=D(2024, 7, 1))])
    ids = [f.rule_id for f in d.findings]
    assert "bj-2022.art26.refuses-correction" not in ids and "bj-2022.art26.repeat" in ids


async def test_rung2_recommendation_lists_no_first_offence_finding_art26(decider, catalog, engine_pool):
    d = await evaluate(decider, catalog, engine_pool, INST, 4)
    assert [f.rule_id for f in d.findings] == ["bj-2022.art26.serious-trigger"]


async def test_private_gain_lists_no_neglect_finding_art27(decider, catalog, engine_pool):
    d = await evaluate(decider, catalog, engine_pool, SUP, 8, [prior(1, D(2024, 2, 1), trigger=7)])
    assert [f.rule_id for f in d.findings] == ["bj-2022.art27.private-gain"]
    assert d.recommendation.sanction_text == "取消其外督员资格"
