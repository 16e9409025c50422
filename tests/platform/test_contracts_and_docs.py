"""Contracts and docs stay honest: buf lint, one versioned service per service, README commands and
configuration table, .ci/run."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from common.config import SERVICES, Settings
from services.documents.config import DocumentsSettings
from services.identity.config import IdentitySettings
from services.notify.config import NotifySettings
from services.registry.config import RegistrySettings
from services.rules.config import RulesSettings

ROOT = Path(__file__).resolve().parents[2]


def test_protos_pass_buf_lint():
    buf = Path(sys.executable).parent / "buf"
    result = subprocess.run([str(buf), "lint"], cwd=ROOT / "proto", capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_a_versioned_grpc_contract(service):
    proto = ROOT / "proto" / "bjsv" / service / "v1" / f"{service}.proto"
    text = proto.read_text()
    assert f"package bjsv.{service}.v1;" in text
    assert re.search(rf"service {service.capitalize()}Service\s*{{", text)
    assert (proto.parent / "events.proto").exists()
    module = importlib.import_module(f"bjsv.{service}.v1.{service}_pb2")
    assert f"{service.capitalize()}Service" in module.DESCRIPTOR.services_by_name


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("```", 2)[1]
    return [ln.strip() for ln in block.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def test_readme_starts_with_exactly_the_up_and_test_commands_and_ci_runs_the_second():
    up, test = readme_commands()
    assert up.endswith(" up") and test.endswith(" test")
    assert test in (ROOT / ".ci" / "run").read_text()


def test_every_setting_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    missing = []
    for cls in (Settings, IdentitySettings, RegistrySettings, RulesSettings, DocumentsSettings, NotifySettings):
        for name in cls.model_fields:
            env = "DATABASE_URL" if name == "database_url" else f"BJSV_{name.upper()}"
            if f"`{env}`" not in readme:
                missing.append(env)
    assert not missing, f"README configuration table lacks {missing}"
