"""No container engine runs here, so the deployment files are checked against the code instead:
service names, ports, environment variable names, probes, replicas, R3 streams, non-root read-only pods."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from common.config import DEFAULT_PORTS, SERVICES, Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KNOWN_ENV = {f"BJSV_{name.upper()}" for name in Settings.model_fields} | {"DATABASE_URL"}


def k8s_docs() -> list[dict]:
    docs = []
    for f in sorted((DEPLOY / "k8s" / "base").glob("*.yaml")):
        if f.name != "kustomization.yaml":
            docs += [d for d in yaml.safe_load_all(f.read_text()) if d]
    return docs


def by_kind(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in k8s_docs() if d["kind"] == kind}


def test_kustomization_lists_every_manifest():
    kust = yaml.safe_load((DEPLOY / "k8s" / "base" / "kustomization.yaml").read_text())
    files = {f.name for f in (DEPLOY / "k8s" / "base").glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kust["resources"]) == files


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_two_replicas_grpc_probes_on_its_port_and_a_locked_down_pod(service):
    dep = by_kind("Deployment")[f"bjsv-{service}"]
    assert dep["spec"]["replicas"] >= 2
    pod = dep["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["args"] == [f"services.{service}"]
    port = DEFAULT_PORTS[service]
    assert container["ports"][0]["containerPort"] == port
    assert container["readinessProbe"]["grpc"]["port"] == port
    assert container["livenessProbe"]["grpc"]["port"] == port
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    svc = by_kind("Service")[f"bjsv-{service}"]
    assert svc["spec"]["ports"][0]["port"] == port
    env_names = {e["name"] for e in container.get("env", [])}
    assert env_names <= KNOWN_ENV


def test_config_map_uses_only_known_settings_and_r3_streams_on_a_three_node_nats():
    config = by_kind("ConfigMap")["bjsv-config"]["data"]
    assert set(config) <= KNOWN_ENV, set(config) - KNOWN_ENV
    assert config["BJSV_NATS_REPLICAS"] == "3"
    nats = by_kind("StatefulSet")["bjsv-nats"]
    assert nats["spec"]["replicas"] == 3
    assert config["BJSV_NATS_URL"].count("nats://") == 3
    for service in SERVICES:
        assert config[f"BJSV_{service.upper()}_TARGET"].endswith(f":{DEFAULT_PORTS[service]}")


def test_compose_runs_the_four_services_with_known_settings():
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    services = compose["services"]
    assert set(SERVICES) <= set(services)
    for service in SERVICES:
        spec = services[service]
        assert spec["command"] == [f"services.{service}"]
        assert spec["ports"] == [f"127.0.0.1:{DEFAULT_PORTS[service]}:{DEFAULT_PORTS[service]}"]
        assert set(spec["environment"]) <= KNOWN_ENV
        assert spec["read_only"] is True and spec["user"] != "0"


def test_dockerfile_runs_as_non_root_and_installs_the_cjk_font():
    text = (DEPLOY / "Dockerfile").read_text()
    assert "USER 10001" in text and "fonts-wqy-zenhei" in text
