"""Dispatch request shape (第十四条, 第十九条, 第二十条): who dispatches, which sessions, the supervision window."""

from __future__ import annotations

import datetime as dt

import pytest

from common.clock import SHANGHAI
from services.registry.domain.problems import ProblemsError
from services.registry.domain.workflow import dispatch
from services.registry.domain.workflow.model import DispatchScope, SessionWindow, SupervisionForm


def t(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, tzinfo=SHANGHAI)


SESSIONS = [SessionWindow("S1", t(10, 9), t(10, 11)), SessionWindow("S2", t(11, 14), t(11, 17))]


@pytest.mark.parametrize(
    ("org", "scope"),
    [("agencies/A", DispatchScope.EXTERNAL), ("agencies/08", DispatchScope.EXTERNAL),
     ("institutions/1100012001", DispatchScope.INTERNAL)],
)  # fmt: skip
def test_agencies_dispatch_external_and_institutions_internal_supervisors_art14(org, scope):
    assert dispatch.scope_of(org) is scope


@pytest.mark.parametrize("org", ["agencies/99", "agencies/", "supervisors/1", ""])
def test_unknown_dispatching_organisation_is_refused(org):
    with pytest.raises(ProblemsError) as e:
        dispatch.scope_of(org)
    assert e.value.problems[0].reason == "DISPATCHING_AGENCY_INVALID"


def test_on_site_window_spans_the_supervised_sessions_art21():
    w = dispatch.supervision_window(SupervisionForm.ON_SITE, SESSIONS, start=None, end=None)
    assert (w.start, w.end, w.days()) == (t(10, 9), t(11, 17), [dt.date(2026, 3, 10), dt.date(2026, 3, 11)])
    only = dispatch.select_sessions(SESSIONS, ["S2"])
    assert dispatch.supervision_window(SupervisionForm.ON_SITE, only, start=None, end=None).end_day == dt.date(
        2026, 3, 11
    )


def test_records_review_happens_after_the_activity_art19():
    with pytest.raises(ProblemsError) as e:
        dispatch.supervision_window(SupervisionForm.RECORDS_REVIEW, SESSIONS, start=t(11, 15), end=t(12, 10))
    assert e.value.problems[0].reason == "REVIEW_BEFORE_ACTIVITY_ENDED"
    with pytest.raises(ProblemsError) as e:
        dispatch.supervision_window(SupervisionForm.RECORDS_REVIEW, SESSIONS, start=None, end=None)
    assert e.value.problems[0].reason == "REVIEW_TIME_REQUIRED"
    w = dispatch.supervision_window(SupervisionForm.RECORDS_REVIEW, SESSIONS, start=t(12, 9), end=t(13, 16))
    assert w.end_day == dt.date(2026, 3, 13)


def test_session_selection_and_team_list_shape():
    with pytest.raises(ProblemsError) as e:
        dispatch.select_sessions(SESSIONS, ["S3"])
    assert e.value.problems[0].reason == "SESSION_UNKNOWN"
    with pytest.raises(ProblemsError) as e:
        dispatch.validate_team_list(["supervisors/1", "supervisors/1", "bob"])
    assert {p.reason for p in e.value.problems} == {"SUPERVISOR_NAME_INVALID", "SUPERVISOR_DUPLICATE"}
    with pytest.raises(ProblemsError) as e:
        dispatch.validate_replacement(["supervisors/1", "supervisors/2"], "supervisors/3", "supervisors/2", "")
    assert {p.reason for p in e.value.problems} == {"NOT_A_MEMBER", "ALREADY_A_MEMBER", "REASON_REQUIRED"}


def test_on_site_cannot_cover_a_session_that_has_ended_art21():
    assert dispatch.ended_sessions(SESSIONS, t(10, 10)) == []  # S1 under way
    assert [s.session_id for s in dispatch.ended_sessions(SESSIONS, t(10, 11))] == ["S1"]  # ends at 11:00
    assert [s.session_id for s in dispatch.ended_sessions(SESSIONS, t(12, 9))] == ["S1", "S2"]
