"""The rules service over a real gRPC channel: real process, real engine workers, SQLite, NATS (D15, D16)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import sqlite3

import grpc
import nats
import pytest
from rules_service import RulesProcess, status_details

from bjsv.rules.v1 import rules_pb2, rules_pb2_grpc
from common import pki
from supervisionctl.natsd import free_port
from tests import auth_support

ALL = [rules_pb2.Attestation(item=i, attested_by="agencies/08", attested_date="2022-08-01") for i in range(1, 6)]


def sup(n, **kw) -> rules_pb2.SupervisorFacts:
    base = dict(
        name=f"supervisors/{n}",
        person_id=f"P{n}",
        gender=rules_pb2.GENDER_MALE,
        birth_date="1970-05-17",
        kind=rules_pb2.SUPERVISOR_KIND_EXTERNAL,
        level=rules_pb2.SUPERVISOR_LEVEL_DISTRICT,
        district_code="08",
        status=rules_pb2.SUPERVISOR_STATUS_ACTIVE,
        term_start_date="2023-01-01",
        training_passed=True,
        attestations=ALL,
    )
    base.update(kw)
    return rules_pb2.SupervisorFacts(**base)


def elig(s, day="2024-06-03", purpose=rules_pb2.PURPOSE_DISPATCH) -> rules_pb2.CheckEligibilityRequest:
    return rules_pb2.CheckEligibilityRequest(supervisor=s, as_of_date=day, purpose=purpose)


PLAN = rules_pb2.PlanFacts(
    name="plans/7", institution="institutions/1100012001", district_code="08", candidate_count=250
)
SESSION = rules_pb2.SessionFacts(name="plans/7/sessions/1", date="2024-06-03", examiner_person_ids=["P3"])


@pytest.fixture(scope="module")
def service(nats_server, tmp_path_factory):
    data = tmp_path_factory.mktemp("rules")
    policy = data / "policy.yaml"
    policy.write_text("rulesets: {}\n", encoding="utf-8")
    proc = RulesProcess(
        data_dir=data,
        port=free_port(),
        nats_url=nats_server.url,
        reload_interval=0.3,
        extra_env={"BJSV_RULES_POLICY_FILE": str(policy)},
    )
    proc.policy = policy
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
async def stub(service):
    async with auth_support.aio_channel(service.target) as ch:
        yield rules_pb2_grpc.RulesServiceStub(ch)


async def test_man_eligible_day_before_66th_birthday_and_not_on_it_art9(stub):
    ok = await stub.CheckEligibility(elig(sup(1, birth_date="1958-06-04")))
    no = await stub.CheckEligibility(elig(sup(1, birth_date="1958-06-03")))
    assert ok.decision.outcome == rules_pb2.OUTCOME_ALLOW
    assert no.decision.outcome == rules_pb2.OUTCOME_DENY
    f = no.decision.findings[0]
    assert (f.rule_id, f.article, f.interpretation) == ("bj-2022.art9.5.age", "第九条第（五）项", "D6")
    assert f.facts["age_years"] == "66" and no.decision.derived_facts["age_years"] == "66"
    assert no.decision.name.startswith("decisions/") and len(no.decision.ruleset_version) == 64
    assert no.decision.ruleset_effective_date == "2022-07-28"


async def test_decision_is_logged_retrievable_listable_and_replayable_D15(stub):
    made = await stub.CheckEligibility(
        elig(sup(77, training_passed=False)),
        metadata=[*auth_support.bearer("agencies/08", "district-agency"), ("x-trace-id", "t-77")],
    )
    got = await stub.GetDecision(rules_pb2.GetDecisionRequest(name=made.decision.name))
    assert got.decision == made.decision
    assert got.actor == "agencies/08" and got.trace_id == "t-77"
    assert '"birth_date": "1970-05-17"' in got.input_json
    listed = await stub.ListDecisions(rules_pb2.ListDecisionsRequest(subject="supervisors/77"))
    assert [d.name for d in listed.decisions] == [made.decision.name]
    replay = await stub.ReplayDecision(rules_pb2.ReplayDecisionRequest(name=made.decision.name))
    assert replay.identical and replay.replayed.findings == made.decision.findings


async def test_unknown_decision_is_not_found(stub):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetDecision(rules_pb2.GetDecisionRequest(name="decisions/nope"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_batch_keeps_order_and_logs_every_item(stub):
    reqs = [elig(sup(i, birth_date=f"{1950 + i % 30}-01-01")) for i in range(300)]
    resp = await stub.BatchCheckEligibility(rules_pb2.BatchCheckEligibilityRequest(requests=reqs))
    assert len(resp.responses) == 300
    for i, r in enumerate(resp.responses):
        assert r.decision.subject == f"supervisors/{i}"
        assert (r.decision.outcome == rules_pb2.OUTCOME_DENY) == (2024 - (1950 + i % 30) >= 66)
    assert len({r.decision.name for r in resp.responses}) == 300


async def test_bad_date_is_invalid_argument_with_field_violations(stub):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.BatchCheckEligibility(
            rules_pb2.BatchCheckEligibilityRequest(requests=[elig(sup(1)), elig(sup(2, birth_date="1970-2-30"))])
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fv = status_details(err.value)["BadRequest"].field_violations
    assert [v.field for v in fv] == ["requests[1].supervisor.birth_date"]


async def test_date_before_any_rule_set_is_failed_precondition_D16(stub):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CheckEligibility(elig(sup(1), day="2022-07-27"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert status_details(err.value)["ErrorInfo"].reason == "NO_RULESET_IN_FORCE"


async def test_recusal_and_team_and_penalty_over_grpc(stub):
    r = await stub.CheckRecusal(
        rules_pb2.CheckRecusalRequest(supervisor=sup(3), plan=PLAN, session=SESSION, as_of_date="2024-06-03")
    )
    assert [f.rule_id for f in r.decision.findings] == ["bj-2022.art16.same-session-examiner"]
    t = await stub.CheckTeam(
        rules_pb2.CheckTeamRequest(
            dispatching_agency="agencies/08",
            plan=PLAN,
            session=SESSION,
            supervisors=[sup(1), sup(2)],
            as_of_date="2024-06-03",
        )
    )
    assert t.decision.outcome == rules_pb2.OUTCOME_ADVISE and t.recommended_team_size == 3
    p = await stub.EvaluatePenalty(
        rules_pb2.EvaluatePenaltyRequest(
            subject_kind=rules_pb2.PENALTY_SUBJECT_KIND_INSTITUTION,
            subject="institutions/1100012001",
            trigger=rules_pb2.NewTrigger(
                trigger=rules_pb2.PENALTY_TRIGGER_ART26_FALSIFICATION, occurred_date="2024-06-01"
            ),
            as_of_date="2024-06-03",
        )
    )
    assert p.recommendation.sanction_text == "向其主管部门提出给予处分的建议" and p.recommendation.immediate_report
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.EvaluatePenalty(
            rules_pb2.EvaluatePenaltyRequest(
                subject_kind=rules_pb2.PENALTY_SUBJECT_KIND_INSTITUTION,
                subject="institutions/1",
                trigger=rules_pb2.NewTrigger(trigger=rules_pb2.PENALTY_TRIGGER_ART27_PRIVATE_GAIN),
                as_of_date="2024-06-03",
            )
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def pool(n: int) -> list[rules_pb2.SupervisorFacts]:
    out = []
    for i in range(n):
        kw = {"recent_dispatch_count": i % 3}
        if i % 4 == 1:
            kw["status"] = rules_pb2.SUPERVISOR_STATUS_SUSPENDED
        out.append(sup(1000 + i, **kw))
    return out


async def test_propose_team_is_reproducible_passes_check_team_and_is_replayable(stub):
    req = rules_pb2.ProposeTeamRequest(
        dispatching_agency="agencies/08", plan=PLAN, session=SESSION, pool=pool(200), as_of_date="2024-06-03"
    )
    first = await stub.ProposeTeam(req)
    assert len(first.team) == 3 and first.seed  # 250 candidates → D7 recommends 3
    req.seed = first.seed
    again = await stub.ProposeTeam(req)
    assert list(again.team) == list(first.team) and again.pool_digest == first.pool_digest
    members = [s for s in req.pool if s.name in set(first.team)]
    check = await stub.CheckTeam(
        rules_pb2.CheckTeamRequest(
            dispatching_agency="agencies/08", plan=PLAN, session=SESSION, supervisors=members, as_of_date="2024-06-03"
        )
    )
    assert check.decision.outcome == rules_pb2.OUTCOME_ALLOW
    replay = await stub.ReplayDecision(rules_pb2.ReplayDecisionRequest(name=first.decision.name))
    assert replay.identical


async def test_propose_team_over_several_days_is_logged_and_replayable_with_its_dates(stub, service):
    req = rules_pb2.ProposeTeamRequest(
        dispatching_agency="agencies/08",
        plan=PLAN,
        session=SESSION,
        pool=pool(110),
        as_of_date="2024-06-03",
        also_on_dates=["2024-06-05", "2024-06-04"],
        seed="d",
    )
    made = await stub.ProposeTeam(req)
    assert made.decision.derived_facts["also_on_dates"] == "2024-06-04,2024-06-05"
    got = await stub.GetDecision(rules_pb2.GetDecisionRequest(name=made.decision.name))
    assert json.loads(got.input_json)["also_on_dates"] == ["2024-06-05", "2024-06-04"]
    assert made.decision.input_digest == hashlib.sha256(req.SerializeToString(deterministic=True)).hexdigest()
    assert (await stub.ReplayDecision(rules_pb2.ReplayDecisionRequest(name=made.decision.name))).identical
    with sqlite3.connect(service.data_dir / "rules.db") as db:  # the pool is still stored once, apart
        (n,) = db.execute(
            "SELECT length(input) FROM decision WHERE id = ?", (made.decision.name.split("/")[1],)
        ).fetchone()
        assert n < 1000


async def test_propose_team_pool_is_logged_once_per_content_and_decisions_keep_their_full_input_d15(stub, service):
    base = rules_pb2.ProposeTeamRequest(
        dispatching_agency="agencies/08", plan=PLAN, session=SESSION, pool=pool(120), as_of_date="2024-06-03"
    )
    made = []
    for seed in ("a", "b", "c"):
        req = rules_pb2.ProposeTeamRequest()
        req.CopyFrom(base)
        req.seed = seed
        made.append((req, await stub.ProposeTeam(req)))
    for req, resp in made:  # each decision: its own input byte for byte (digest), pool included, replayable
        got = await stub.GetDecision(rules_pb2.GetDecisionRequest(name=resp.decision.name))
        assert resp.decision.input_digest == hashlib.sha256(req.SerializeToString(deterministic=True)).hexdigest()
        assert json.loads(got.input_json)["pool"][119]["name"] == req.pool[119].name
        assert json.loads(got.input_json)["seed"] == req.seed
        assert (await stub.ReplayDecision(rules_pb2.ReplayDecisionRequest(name=resp.decision.name))).identical
    with sqlite3.connect(service.data_dir / "rules.db") as db:
        digest = hashlib.sha256(
            b"".join(b"\x22" + _len(s) + s for s in (p.SerializeToString(deterministic=True) for p in base.pool))
        ).hexdigest()
        assert db.execute("SELECT count(*) FROM input_part WHERE digest = ?", (digest,)).fetchone()[0] == 1
        rows = db.execute("SELECT length(input) FROM decision WHERE input_part_digest = ?", (digest,)).fetchall()
        assert len(rows) == 3 and all(n < 1000 for (n,) in rows)


def _len(b: bytes) -> bytes:
    n, out = len(b), bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


async def test_too_small_pool_is_failed_precondition_with_counts(stub):
    req = rules_pb2.ProposeTeamRequest(
        dispatching_agency="agencies/08",
        plan=PLAN,
        session=SESSION,
        pool=pool(5),
        as_of_date="2024-06-03",
        seed="x",
        team_size=5,
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ProposeTeam(req)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    d = status_details(err.value)
    assert d["ErrorInfo"].reason == "POOL_TOO_SMALL"
    assert d["ErrorInfo"].metadata["eligible_count"] == "4"
    assert "bj-2022.art27.suspended" in [v.type for v in d["PreconditionFailure"].violations]


async def test_sample_inspection_targets_reproducible(stub):
    plans = [rules_pb2.PlanFacts(name=f"plans/{i}") for i in range(40)]
    a = await stub.SampleInspectionTargets(
        rules_pb2.SampleInspectionTargetsRequest(
            plans=plans, sample_size=5, seed="s", as_of_date="2024-06-03", requesting_agency="agencies/08"
        )
    )
    b = await stub.SampleInspectionTargets(
        rules_pb2.SampleInspectionTargetsRequest(
            plans=list(reversed(plans)), sample_size=5, seed="s", as_of_date="2024-06-03"
        )
    )
    assert list(a.plans) == list(b.plans) and len(a.plans) == 5


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


async def test_worker_killed_mid_batch_is_invisible_to_the_caller(stub, service):
    reqs = [elig(sup(i, birth_date=f"{1950 + i % 30}-01-01")) for i in range(5000)]
    victims = service.worker_pids()
    assert len(victims) == 2
    before = cpu_ticks(victims[0])
    call = stub.BatchCheckEligibility(rules_pb2.BatchCheckEligibilityRequest(requests=reqs))
    while cpu_ticks(victims[0]) - before < 2:  # the worker is evaluating its half of the batch
        assert not call.done(), "the batch finished before the worker could be killed mid-batch"
        await asyncio.sleep(0.005)
    os.kill(victims[0], signal.SIGKILL)
    resp = await call
    assert len(resp.responses) == 5000
    assert all(
        (r.decision.outcome == rules_pb2.OUTCOME_DENY) == (2024 - (1950 + i % 30) >= 66)
        for i, r in enumerate(resp.responses)
    )
    for _ in range(300):
        pids = service.worker_pids()
        if len(pids) == 2 and victims[0] not in pids:
            break
        await asyncio.sleep(0.1)
    assert len(service.worker_pids()) == 2 and victims[0] not in service.worker_pids()


async def test_worker_killed_while_idle_is_replaced_before_the_next_call(stub, service):
    victims = service.worker_pids()
    os.kill(victims[1], signal.SIGKILL)
    for _ in range(50):  # the pool looks every second
        pids = service.worker_pids()
        if len(pids) == 2 and victims[1] not in pids:
            break
        await asyncio.sleep(0.1)
    assert len(service.worker_pids()) == 2 and victims[1] not in service.worker_pids()
    resp = await stub.CheckEligibility(elig(sup(7)))
    assert resp.decision.outcome == rules_pb2.OUTCOME_ALLOW


async def test_decisions_are_published_as_events(stub, nats_server):
    made = await stub.CheckEligibility(elig(sup(4242)))
    nc = await nats.connect(nats_server.url, tls=pki.ssl_context())
    try:
        js = nc.jetstream()
        for _ in range(50):
            try:
                msg = await js.get_last_msg("BJSV_RULES", "bjsv.rules.decision.made")
            except nats.js.errors.NotFoundError:
                msg = None
            if msg is not None and made.decision.name.encode() in msg.data:
                break
            await asyncio.sleep(0.1)
        assert msg is not None and made.decision.name.encode() in msg.data
    finally:
        await nc.close()


AGE_MESSAGE = "不具备第九条第（五）项条件：男性不超过65周岁、女性不超过60周岁"


async def test_hot_reload_blue_green_and_broken_file_keeps_old_version(stub, service):
    before = (await stub.GetRuleSet(rules_pb2.GetRuleSetRequest(as_of_date="2024-06-03"))).rule_set
    old_decision = await stub.CheckEligibility(elig(sup(5, birth_date="1956-01-01")))  # 68: denied at 65
    old_pids = service.worker_pids()
    # a rule file changes (the message) and the deployment policy overrides the male age limit
    rule_file = service.rules_dir / "bj-2022" / "rules" / "eligibility.yaml"
    original_rules = rule_file.read_text(encoding="utf-8")
    rule_file.write_text(original_rules.replace(AGE_MESSAGE, AGE_MESSAGE + "（本地口径）"), encoding="utf-8")
    service.policy.write_text("rulesets:\n  bj-2022:\n    eligibility.max_age_male: 70\n", encoding="utf-8")
    reload = await stub.ReloadRuleSet(rules_pb2.ReloadRuleSetRequest())
    # the file watcher (every 0.3 s here) may have loaded one or both changes first: either way, once the
    # explicit reload returns, the version serving is the one of both files
    new_version = reload.rule_sets[0].version
    assert (await stub.GetRuleSet(rules_pb2.GetRuleSetRequest(as_of_date="2024-06-03"))).rule_set.version == new_version
    assert new_version != before.version
    fresh = await stub.CheckEligibility(elig(sup(5, birth_date="1956-01-01")))
    assert fresh.decision.outcome == rules_pb2.OUTCOME_ALLOW and fresh.decision.ruleset_version == new_version
    for _ in range(300):  # old workers drained and stopped
        if not set(old_pids) & set(service.worker_pids()):
            break
        await asyncio.sleep(0.1)
    assert not set(old_pids) & set(service.worker_pids())
    # the auditor replays the old decision with the old version (temporary worker) and gets the same result
    replay = await stub.ReplayDecision(rules_pb2.ReplayDecisionRequest(name=old_decision.decision.name))
    assert replay.identical and replay.replayed.outcome == rules_pb2.OUTCOME_DENY
    assert (
        await stub.GetRuleSet(rules_pb2.GetRuleSetRequest(version=before.version))
    ).rule_set.version == before.version
    # a broken file is rejected with a precise message; the new version keeps serving
    bad = service.rules_dir / "bj-2022" / "rules" / "recusal.yaml"
    good = bad.read_text(encoding="utf-8")
    bad.write_text(good.replace("[is_session_examiner, eq, 1]", "[is_session_examinr, eq, 1]"), encoding="utf-8")
    try:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.ReloadRuleSet(rules_pb2.ReloadRuleSetRequest())
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "recusal.yaml[0] (bj-2022.art16.same-session-examiner): when: unknown fact field" in err.value.details()
        await asyncio.sleep(0.8)  # the file watcher sees the broken file too and must not take it
        still = await stub.CheckEligibility(elig(sup(5, birth_date="1956-01-01")))
        assert still.decision.ruleset_version == new_version
    finally:
        bad.write_text(good, encoding="utf-8")
    # the watcher picks up a valid change on its own (no RPC): back to the original files and defaults
    rule_file.write_text(original_rules, encoding="utf-8")
    service.policy.write_text("rulesets: {}\n", encoding="utf-8")
    for _ in range(300):
        d = await stub.CheckEligibility(elig(sup(5, birth_date="1956-01-01")))
        if d.decision.ruleset_version != new_version:
            break
        await asyncio.sleep(0.1)
    assert d.decision.ruleset_version == before.version and d.decision.outcome == rules_pb2.OUTCOME_DENY
    assert d.decision.findings[0].message == AGE_MESSAGE
