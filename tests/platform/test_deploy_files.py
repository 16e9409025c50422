"""No container engine runs here, so the deployment files are checked against the code instead:
service names, ports, environment variable names, probes, replicas, R3 streams, non-root read-only pods; and
the manifests `kubectl kustomize` renders (base and production overlay) against the Kubernetes schemas, with
what a platform team asks of every workload (probes, a PDB, resources, a NetworkPolicy selecting it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from common.auth.config import AuthSettings
from common.clients import API_HEALTH
from common.config import DEFAULT_PORTS, SERVICES, Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KNOWN_ENV = {f"BJSV_{name.upper()}" for cls in (Settings, AuthSettings) for name in cls.model_fields} | {"DATABASE_URL"}


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
    # kubelet cannot present a client certificate: probes go to the plaintext health-only port
    probe_port = int(by_kind("ConfigMap")["bjsv-config"]["data"]["BJSV_HEALTH_PROBE_PORT"])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == probe_port
    # in rotation and alive while the APIs answer; failing background work shows in "" and in metrics
    assert container["readinessProbe"]["grpc"]["service"] == container["livenessProbe"]["grpc"]["service"] == API_HEALTH
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


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())


COMPOSED = (*SERVICES, "console")  # the long-running containers of our image that serve calls
PUBLISHED = {**DEFAULT_PORTS, "console": 8080}


def test_compose_runs_the_four_services_and_the_console_with_known_settings():
    services = compose()["services"]
    for name in COMPOSED:
        spec = services[name]
        assert spec["command"] == [f"services.{name}"]
        assert spec["ports"] == [f"127.0.0.1:{PUBLISHED[name]}:{PUBLISHED[name]}"]
        assert set(spec["environment"]) <= KNOWN_ENV, set(spec["environment"]) - KNOWN_ENV
        assert spec["read_only"] is True and spec["user"] != "0"


def test_compose_speaks_no_plaintext_and_mounts_the_tls_material_read_only():
    services = compose()["services"]
    for name in COMPOSED:
        env, volumes = services[name]["environment"], services[name]["volumes"]
        assert env["BJSV_TLS"] == "on" and f"pki:{env['BJSV_PKI_DIR']}:ro" in volumes, name
        assert services[name]["depends_on"]["certs"] == {"condition": "service_completed_successfully"}
        assert env["BJSV_NATS_EMBEDDED"] == "false" and env["BJSV_NATS_URL"] == "nats://nats:4222"
        # every service's address is its compose name, which its certificate names (common.pki SANs)
        for other in SERVICES:
            assert env[f"BJSV_{other.upper()}_TARGET"] == f"{other}:{DEFAULT_PORTS[other]}"
        assert "${POSTGRES_PASSWORD:?" in env["DATABASE_URL"], "no database password in the file"
    certs = services["certs"]
    assert certs["entrypoint"] == ["supervisionctl"] and certs["command"][:2] == ["certs", "init"]
    nats_conf = certs["command"][certs["command"].index("--nats-config") + 1]
    assert services["nats"]["command"] == ["-c", nats_conf]
    assert f"pki:{Path(nats_conf).parent}:ro" in services["nats"]["volumes"]
    for name, spec in services.items():
        assert (spec.get("environment") or {}).get("BJSV_TLS", "on") == "on", name
        assert all(p.startswith("127.0.0.1:") for p in spec.get("ports", [])), name


def test_compose_services_reach_the_embedded_issuer_by_the_url_it_names_itself_with():
    services = compose()["services"]
    identity = services["identity"]
    assert identity["command"] == ["services.identity"]
    url = identity["environment"]["BJSV_IDENTITY_URL"]
    assert url == f"https://identity:{identity['environment']['BJSV_IDENTITY_PORT']}"
    assert identity["environment"]["BJSV_TLS"] == "on" and "pki:/etc/bjsv/pki:ro" in identity["volumes"]
    assert "ports" not in identity, "the issuer stays on the compose network"
    folder = identity["environment"]["BJSV_IDENTITY_DIR"]
    assert f"identity:{folder}" in identity["volumes"]
    for name in (*COMPOSED, "ctl"):
        env = services[name]["environment"]
        assert env["BJSV_IDENTITY_URL"] == url and "BJSV_OIDC_ISSUER" not in env, name
        assert f"identity:{env['BJSV_IDENTITY_DIR']}:ro" in services[name]["volumes"], name
    for name in COMPOSED:
        assert services[name]["depends_on"]["identity"] == {"condition": "service_healthy"}


def test_certs_init_writes_the_nats_config_with_tls_and_one_confined_user_per_component(tmp_path):
    ctl = str(Path(sys.executable).parent / "supervisionctl")
    env = {**os.environ, "BJSV_TLS": "on", "BJSV_PKI_DIR": str(tmp_path / "pki"), "BJSV_DATA_DIR": str(tmp_path)}
    out = subprocess.run(
        [ctl, "certs", "init", "--nats-config", str(tmp_path / "nats.conf")], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    conf = json.loads((tmp_path / "nats.conf").read_text())
    assert conf["tls"]["verify_and_map"] is True and conf["tls"]["ca_file"] == str(tmp_path / "pki" / "ca.crt")
    assert conf["jetstream"]["store_dir"] == "/data"
    users = {u["user"]: u.get("permissions") for u in conf["authorization"]["users"]}
    for component in (*SERVICES, "identity", "console"):
        allowed = users[f"CN={component},O=bjsv"]["publish"]["allow"]
        own = [a for a in allowed if a.startswith("bjsv.") and a not in ("bjsv.dlq.>", f"bjsv.audit.{component}")]
        assert own == [f"bjsv.{component}.>"], allowed  # publishes its own events only
    assert users["CN=supervisionctl,O=bjsv"] is None  # the operator is not confined


def test_dockerfile_runs_as_non_root_and_installs_the_cjk_font():
    text = (DEPLOY / "Dockerfile").read_text()
    assert "USER 10001" in text and "fonts-wqy-zenhei" in text


K8S_VERSION = "1.32.0"
CRDS = {"monitoring.coreos.com/v1"}  # the Prometheus Operator's ServiceMonitor: no schema offline


def rendered(target: str) -> list[dict]:
    if not shutil.which("kubectl"):
        pytest.skip("kubectl not installed: the rendered manifests are not checked")
    out = subprocess.run(["kubectl", "kustomize", str(DEPLOY / "k8s" / target)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


@pytest.mark.parametrize("target", ["base", "overlays/production"])
def test_rendered_manifests_validate_against_the_kubernetes_schemas(target):
    docs = rendered(target)
    for doc in docs:
        if doc["apiVersion"] in CRDS:
            continue
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    assert {"Job", "NetworkPolicy", "PodDisruptionBudget", "HorizontalPodAutoscaler", "ServiceMonitor"} <= {
        d["kind"] for d in docs
    }


@pytest.mark.parametrize("target", ["base", "overlays/production"])
def test_every_workload_has_probes_a_pdb_resources_and_a_network_policy(target):
    docs = rendered(target)
    pdbs = [d["spec"]["selector"] for d in docs if d["kind"] == "PodDisruptionBudget"]
    policies = [d["spec"]["podSelector"] for d in docs if d["kind"] == "NetworkPolicy"]
    hpas = {d["spec"]["scaleTargetRef"]["name"] for d in docs if d["kind"] == "HorizontalPodAutoscaler"}
    assert any(p == {} for p in policies), "a default-deny policy selects every pod"
    workloads = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
    assert len(workloads) == len(SERVICES) + 1  # the services and NATS
    for w in workloads:
        name, labels = w["metadata"]["name"], w["spec"]["template"]["metadata"]["labels"]
        for c in w["spec"]["template"]["spec"]["containers"]:
            missing = [p for p in ("startupProbe", "readinessProbe", "livenessProbe") if p not in c]
            assert not missing, f"{name}: no {missing}"
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]) & set(c["resources"]["limits"]), name
            assert "initialDelaySeconds" not in c["livenessProbe"], f"{name}: the startupProbe covers start-up"
        assert any(selects(p, labels) for p in pdbs), f"{name}: no PodDisruptionBudget"
        assert any(p and selects(p, labels) for p in policies), f"{name}: no NetworkPolicy allows its traffic"
        assert w["spec"]["template"]["spec"]["topologySpreadConstraints"], f"{name}: not spread over nodes"
        if w["kind"] == "Deployment":
            assert name in hpas, f"{name}: no HorizontalPodAutoscaler"
    nats_pdb = next(d for d in docs if d["kind"] == "PodDisruptionBudget" and d["metadata"]["name"] == "bjsv-nats")
    assert nats_pdb["spec"]["minAvailable"] == 2  # JetStream R3 keeps its quorum through a drain


def test_services_do_not_migrate_at_start_in_kubernetes_a_job_does():
    docs = rendered("base")
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "bjsv-config")["data"]
    assert config["BJSV_MIGRATE_ON_START"] == "false"
    job = next(d for d in docs if d["kind"] == "Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["supervisionctl"] and container["args"] == ["migrate"]
