"""Rule-set declarations: validation with precise messages, parameters and overrides, versions (D16)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from rules_helpers import RULESETS

from services.rules.domain.ruleset import RuleSetError, load_catalog


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "rulesets"
    shutil.copytree(RULESETS, root)
    return root


def edit_rules(root: Path, fname: str, fn) -> None:
    path = root / "bj-2022" / "rules" / fname
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    fn(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def test_every_rule_cites_an_article_and_has_a_chinese_message(catalog):
    rs = catalog.rulesets[0]
    assert rs.id == "bj-2022" and str(rs.effective_from) == "2022-07-28"
    for rule in rs.rules:
        assert rule.article.startswith(("第", "附件")), rule.id
        assert any("\u4e00" <= ch <= "\u9fff" for ch in rule.message), rule.id
    for p in rs.parameters.values():
        assert p.article, p.name


def test_d_parameters_are_declared_with_defaults(catalog):
    rs = catalog.rulesets[0]
    assert rs.param("record.deadline_workdays") == 5
    assert (rs.param("eligibility.max_age_male"), rs.param("eligibility.max_age_female")) == (65, 60)
    assert rs.param("team.large_plan_threshold") == 200
    assert rs.param("penalty.serious_triggers") == [4, 5]
    assert rs.param("penalty.ladder.art26")[0] == "通报批评并责令改正"


def test_version_ignores_comments_but_not_values(tree):
    v0 = load_catalog(tree).rulesets[0].version
    path = tree / "bj-2022" / "parameters.yaml"
    path.write_text("# a new comment\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    assert load_catalog(tree).rulesets[0].version == v0
    path.write_text(path.read_text(encoding="utf-8").replace("value: 365", "value: 730"), encoding="utf-8")
    assert load_catalog(tree).rulesets[0].version != v0


def test_policy_file_overrides_a_parameter_and_changes_the_version(tree, tmp_path):
    v0 = load_catalog(tree).rulesets[0].version
    policy = tmp_path / "policy.yaml"
    policy.write_text("rulesets:\n  bj-2022:\n    team.recommend_block_size: 150\n", encoding="utf-8")
    rs = load_catalog(tree, policy).rulesets[0]
    assert rs.param("team.recommend_block_size") == 150 and rs.parameters["team.recommend_block_size"].overridden
    assert rs.version != v0


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("rulesets:\n  bj-2022:\n    team.no_such: 1\n", "unknown parameter(s) team.no_such"),
        ("rulesets:\n  bj-2022:\n    team.min_external: three\n", "has type str"),
        ("rulesets:\n  bj-2099:\n    team.min_external: 3\n", "unknown rule set(s) bj-2099"),
        ("rulesets:\n  bj-2022:\n    feedback.review_trigger: 3\n", "bj-2022.feedback.review_trigger: 3 is not"),
        (
            "rulesets:\n  bj-2022:\n    record.case_opening_items: [{form: 2, item: 17, triggers: [1]}]\n",
            "bj-2022.record.case_opening_items",
        ),
        ("rulesets:\n  bj-2022:\n    penalty.serious_triggers: [7]\n", "bj-2022.penalty.serious_triggers"),
    ],
)
def test_bad_policy_file_is_rejected_precisely(tree, tmp_path, content, needle):
    policy = tmp_path / "policy.yaml"
    policy.write_text(content, encoding="utf-8")
    with pytest.raises(RuleSetError, match=None) as err:
        load_catalog(tree, policy)
    assert needle in str(err.value)


BROKEN = [
    (
        "unknown_field",
        lambda rules: rules[0].__setitem__("when", ["agee_years", "gt", 65]),
        "eligibility.yaml[0] (bj-2022.art9.1.party-line): when: unknown fact field 'agee_years'",
    ),
    (
        "unknown_operator",
        lambda rules: rules[0].__setitem__("when", ["age_years", "older", 65]),
        "unknown operator 'older'",
    ),
    (
        "unknown_parameter",
        lambda rules: rules[4].__setitem__("when", ["age_years", "gt", "@nope"]),
        "(bj-2022.art9.5.age): when: unknown parameter '@nope'",
    ),
    ("missing_article", lambda rules: rules[0].pop("article"), "'article' is required"),
    ("bad_severity", lambda rules: rules[0].__setitem__("severity", "fatal"), "severity must be blocking or advisory"),
    ("bad_date", lambda rules: rules[0].__setitem__("valid_from", "2022-13-01"), "valid_from: '2022-13-01'"),
    ("duplicate_id", lambda rules: rules[1].__setitem__("id", rules[0]["id"]), "duplicate rule id"),
    (
        "undeclared_interpretation",
        lambda rules: rules[4].__setitem__("interpretation", "D99"),
        "bj-2022.art9.5.age cites D99, which is not declared",
    ),
]


@pytest.mark.parametrize(("mutate", "needle"), [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_broken_rule_file_is_rejected_with_a_precise_message(tree, mutate, needle):
    edit_rules(tree, "eligibility.yaml", mutate)
    with pytest.raises(RuleSetError) as err:
        load_catalog(tree)
    assert needle in str(err.value)


def test_yaml_syntax_error_names_the_file(tree):
    (tree / "bj-2022" / "rules" / "team.yaml").write_text("- id: [unclosed\n", encoding="utf-8")
    with pytest.raises(RuleSetError) as err:
        load_catalog(tree)
    assert "team.yaml: YAML syntax error" in str(err.value)


def test_a_rule_change_that_contradicts_a_canary_is_rejected(tree):
    edit_rules(
        tree,
        "eligibility.yaml",
        lambda rules: rules[4].__setitem__("when", {"any": [{"all": [["gender", "eq", 1], ["age_years", "gt", 70]]}]}),
    )
    with pytest.raises(RuleSetError) as err:
        load_catalog(tree)
    assert "canaries.yaml[1]" in str(err.value)
