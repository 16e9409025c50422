"""Settings of the rules service (env BJSV_*; see README Configuration)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from common.config import Settings

DEFAULT_RULES_DIR = Path(__file__).resolve().parent / "rulesets"


class RulesSettings(Settings):
    rules_dir: Path = Field(
        default=DEFAULT_RULES_DIR, description="folder holding one sub-folder per rule set (ruleset.yaml, rules/, …)"
    )
    rules_policy_file: Path | None = Field(
        default=None, description="YAML parameter overrides per rule set (BJSV_RULES_POLICY_FILE)"
    )
    rules_workers: int = Field(default=2, ge=1, le=16, description="engine worker processes (one per core)")
    rules_reload_interval: float = Field(
        default=2.0, description="seconds between checks of the rule-set files for hot reload; 0 = only on demand"
    )
    rules_batch_max: int = Field(default=5000, description="max items per Batch* call")
    calendar_file: Path | None = Field(
        default=None,
        description="operator calendar file (YAML/JSON) for years chinese-calendar does not cover (D5)",
    )
