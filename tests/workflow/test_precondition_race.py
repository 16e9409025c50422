"""Preconditions are checked again in the write transaction (issue #11): a dispatch cancelled after a record's
or a feedback's checks passed, but before its write, refuses it (第二十三条: records and feedback belong to an
active dispatch). And the workflow's test clock is stored, so a second replica answers with the same "now".

The interleaving is made deterministic by running the submission's two phases in this process, on the
registry's own SQLite database (the real `records` / `feedback` use cases, the real rules service), and
cancelling the dispatch through the registry server's public API in between. A use case that checked only
in its read phase would write the record of a cancelled dispatch."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import wf_helpers as h

from bjsv.registry.v1 import supervision_pb2 as spb
from common.auth import credentials
from common.auth.config import AuthSettings
from common.clock import SHANGHAI, Clock
from common.db import Database
from common.errors import FailedPrecondition
from common.policy import PolicyParameters
from services.registry.__main__ import load_models
from services.registry.config import RegistrySettings
from services.registry.domain.workflow.feedback import FeedbackAnswers
from services.registry.domain.workflow.model import Answer
from services.registry.storage import models
from services.registry.workflow import build_workflow, feedback, records
from services.registry.workflow.context import Workflow
from services.registry.workflow.convert import from_proto_record

D = dt.date
MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "registry" / "storage" / "migrations"


@pytest.fixture(scope="module")
async def workflow(wf_stack) -> AsyncIterator[Workflow]:
    """The workflow's use cases in this process, on the registry server's database (shared SQLite file)."""
    settings = RegistrySettings(
        data_dir=wf_stack.config.data_dir, rules_target=wf_stack.config.target("rules"), supervision_test_clock=True
    )
    load_models()
    # The use cases call the rules service as the registry does: with the registry's own identity.
    credentials.use(credentials.ServiceIdentity(AuthSettings(), "registry"))
    db = Database(settings, service="registry", metadata=models.Base.metadata, migrations=MIGRATIONS)
    parameters = PolicyParameters(settings.target("rules"))
    built = build_workflow(settings, db, clock=Clock(), parameters=parameters)
    yield built.servicer.implementation.wf
    await built.stop()
    await parameters.close()
    db.dispose()


def _dispatch(c: h.Clients, day: D) -> tuple[spb.Dispatch, str, str]:
    inst = h.institution(c, "1100012009", "北京某某焊接培训学校", "08")
    a, b = h.supervisor(c, "甲督导")[0], h.supervisor(c, "乙督导")[0]
    plan = c.sv.CreatePlan(
        spb.CreatePlanRequest(plan=h.plan_msg(inst, day, candidates=40), client_request_id=h.request_id("plan")),
        metadata=h.md(h.HAIDIAN),
    ).plan
    d = c.sv.CreateDispatch(
        spb.CreateDispatchRequest(
            dispatch=spb.Dispatch(plan=plan.name, dispatching_agency="agencies/08", form=spb.SUPERVISION_FORM_ON_SITE),
            selection=spb.TEAM_SELECTION_MANUAL,
            supervisors=[a, b],
            client_request_id=h.request_id("dispatch"),
        ),
        metadata=h.md(h.HAIDIAN),
    ).dispatch
    h.declare(c, d.name, a, b)
    return d, a, b


def _cancel(c: h.Clients, d: spb.Dispatch) -> None:
    c.sv.CancelDispatch(spb.CancelDispatchRequest(name=d.name, reason="评价活动取消"), metadata=h.md(h.HAIDIAN))


async def test_dispatch_cancelled_between_a_records_checks_and_its_write_refuses_the_record_art23(clients, workflow):
    c = clients
    c.set_clock(dt.datetime(2026, 9, 7, 9, tzinfo=SHANGHAI))
    d, a, _ = _dispatch(c, D(2026, 9, 8))
    c.set_clock(dt.datetime(2026, 9, 9, 9, tzinfo=SHANGHAI))
    await workflow.clock.refresh()  # the stored test clock: this process reads the server's "now"
    assert workflow.today() == D(2026, 9, 9)
    rec = spb.SupervisionRecord(
        dispatch=d.name,
        submitted_by=a,
        answers=h.answers(17),
        problems="无",
        supervisor_signatures=["甲督导", "乙督导"],
        institution_head_signature="李校长",
        sign_date="2026-09-08",
    )
    prepared = await records.prepare(workflow, records.RecordSubmission(d.name, a, from_proto_record(rec), "race-rec"))

    _cancel(c, d)  # commits between the record's checks and its write

    with pytest.raises(FailedPrecondition) as e:
        await records.commit(workflow, prepared)
    assert e.value.reason == "DISPATCH_CANCELLED"
    status = c.sv.GetPlanStatus(spb.GetPlanStatusRequest(plan=d.plan)).dispatches[0]
    assert status.dispatch.state == spb.DISPATCH_STATE_CANCELLED and not status.HasField("record")


async def test_dispatch_cancelled_between_a_feedbacks_checks_and_its_write_refuses_the_feedback_art23(
    clients, workflow
):
    c = clients
    c.set_clock(dt.datetime(2026, 9, 14, 9, tzinfo=SHANGHAI))
    d, _, b = _dispatch(c, D(2026, 9, 15))
    c.set_clock(dt.datetime(2026, 9, 16, 9, tzinfo=SHANGHAI))
    await workflow.clock.refresh()
    day = dt.datetime(2026, 9, 15, tzinfo=SHANGHAI)
    submission = feedback.FeedbackSubmission(
        d.name,
        b,
        FeedbackAnswers(Answer.YES, Answer.YES, Answer.YES),
        day.replace(hour=8),
        day.replace(hour=17),
        "",
        "李校长",
        "race-fb",
    )
    prepared = await feedback.prepare(workflow, submission)

    _cancel(c, d)

    with pytest.raises(FailedPrecondition) as e:
        await feedback.commit(workflow, prepared)
    assert e.value.reason == "DISPATCH_CANCELLED"
    assert not c.sv.GetPlanStatus(spb.GetPlanStatusRequest(plan=d.plan)).dispatches[0].feedback


async def test_test_clock_is_stored_so_a_second_replica_answers_with_the_same_now(clients, workflow):
    """The in-process workflow is a second replica on the server's database: it adopts the server's setting."""
    clients.set_clock(dt.datetime(2026, 10, 9, 14, 30, tzinfo=SHANGHAI))
    await workflow.clock.refresh()
    assert (workflow.clock.mode, workflow.clock.now()) == ("fixed", dt.datetime(2026, 10, 9, 14, 30, tzinfo=SHANGHAI))
    await workflow.clock.fix(dt.datetime(2026, 10, 12, 8, tzinfo=SHANGHAI))  # set on this replica
    now = clients.sv.GetSupervisionClock(spb.GetSupervisionClockRequest()).now
    assert now.ToDatetime(tzinfo=SHANGHAI) == dt.datetime(2026, 10, 12, 8, tzinfo=SHANGHAI)
