"""`supervisionctl rules …` against the running stack: the rule set in force, a logged decision and its
replay with the same rule-set version (D15, D16)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from bjsv.rules.v1 import rules_pb2, rules_pb2_grpc
from common import clients
from supervisionctl.main import app
from supervisionctl.natsd import free_port

ATTESTED = [rules_pb2.Attestation(item=i, attested_by="agencies/08", attested_date="2022-08-01") for i in range(1, 6)]


@pytest.fixture
def cli(stack, monkeypatch):
    monkeypatch.setenv("BJSV_RULES_PORT", str(stack.config.ports["rules"]))
    return CliRunner()


def test_show_lists_the_rules_in_force_with_their_articles(cli):
    result = cli.invoke(app, ["rules", "show", "--date", "2026-11-28"])
    assert result.exit_code == 0, result.output
    assert "第九条" in result.output and "2022-07-28" in result.output


def test_a_logged_decision_is_shown_and_replays_identically_art9_d15(cli, stack):
    too_old = rules_pb2.SupervisorFacts(
        name="supervisors/cli-1",
        person_id="P-cli-1",
        gender=rules_pb2.GENDER_MALE,
        birth_date="1960-11-28",
        kind=rules_pb2.SUPERVISOR_KIND_EXTERNAL,
        level=rules_pb2.SUPERVISOR_LEVEL_DISTRICT,
        district_code="08",
        status=rules_pb2.SUPERVISOR_STATUS_ACTIVE,
        term_start_date="2025-01-01",
        training_passed=True,
        attestations=ATTESTED,
    )
    with clients.sync_channel(stack.config.target("rules")) as ch:
        resp = rules_pb2_grpc.RulesServiceStub(ch).CheckEligibility(
            rules_pb2.CheckEligibilityRequest(
                supervisor=too_old, as_of_date="2026-11-28", purpose=rules_pb2.PURPOSE_DISPATCH
            ),
            timeout=10,
        )
    name = resp.decision.name
    assert resp.decision.outcome == rules_pb2.OUTCOME_DENY  # his 66th birthday (第九条, D6)
    shown = cli.invoke(app, ["rules", "decision", name])
    assert shown.exit_code == 0, shown.output
    assert "不予" in shown.output and "第九条" in shown.output
    replayed = cli.invoke(app, ["rules", "replay", name])
    assert replayed.exit_code == 0 and "复核结果一致" in replayed.output


def test_unknown_decision_exits_1_and_unreachable_service_exits_3(cli, monkeypatch):
    assert cli.invoke(app, ["rules", "decision", "decisions/00000000-0000-0000-0000-000000000000"]).exit_code == 1
    monkeypatch.setenv("BJSV_RULES_PORT", str(free_port()))
    assert cli.invoke(app, ["rules", "show"]).exit_code == 3
