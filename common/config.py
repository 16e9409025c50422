"""Settings shared by every service and the operator CLI, read from environment variables.

Every variable is documented in README.md (Configuration). Services subclass `Settings` for their own
knobs; nothing is read at import time — call `Settings()` in a composition root.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICES = ("registry", "rules", "documents", "notify")
DEFAULT_PORTS = {"registry": 50051, "rules": 50052, "documents": 50053, "notify": 50054}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BJSV_", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="embedded SQLite files, NATS store, logs, pid files")
    bind_host: str = Field(default="127.0.0.1", description="address every gRPC server binds to")
    registry_port: int = Field(default=DEFAULT_PORTS["registry"], description="gRPC port of the registry")
    rules_port: int = Field(default=DEFAULT_PORTS["rules"], description="gRPC port of the rules service")
    documents_port: int = Field(default=DEFAULT_PORTS["documents"], description="gRPC port of the documents service")
    notify_port: int = Field(default=DEFAULT_PORTS["notify"], description="gRPC port of the notify service")
    # Prometheus /metrics of each service (common.metrics); unset = none (`supervisionctl up` sets them).
    registry_metrics_port: int | None = Field(default=None, description="Prometheus /metrics port of the registry")
    rules_metrics_port: int | None = Field(default=None, description="Prometheus /metrics port of the rules service")
    documents_metrics_port: int | None = Field(default=None, description="Prometheus /metrics port of documents")
    notify_metrics_port: int | None = Field(default=None, description="Prometheus /metrics port of notify")
    # How a service reaches another: defaults to bind_host:<port>; a balancer address in scale-out.
    registry_target: str | None = Field(default=None, description="address other services call the registry at")
    rules_target: str | None = Field(default=None, description="address other services call the rules service at")
    documents_target: str | None = Field(default=None, description="address other services call documents at")
    notify_target: str | None = Field(default=None, description="address other services call notify at")

    nats_url: str = Field(default="nats://127.0.0.1:14222", description="comma-separated NATS URLs")
    nats_embedded: bool = Field(
        default=True, description="`supervisionctl up` starts its own nats-server on the port of nats_url (loopback)"
    )
    nats_connect_timeout: float = Field(default=8.0, description="seconds the first NATS connect may take")
    nats_replicas: int = Field(default=1, description="JetStream stream replicas (3 on a NATS cluster)")
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "BJSV_DATABASE_URL"),
        description="PostgreSQL URL for scale-out; unset = one SQLite file per service under data_dir",
    )
    db_schema_prefix: str = Field(default="", description="prefix of the per-service PostgreSQL schema")
    log_format: str = Field(default="text", description="text | json")
    log_level: str = Field(default="INFO", description="DEBUG | INFO | WARNING | ERROR")
    shutdown_grace: float = Field(default=8.0, description="seconds in-flight calls get on SIGTERM")
    health_probe_port: int | None = Field(
        default=None, description="plaintext gRPC health-only port for kubelet probes (the API port needs mTLS)"
    )
    migrate_on_start: bool = Field(
        default=True,
        description="apply migrations at start; false in Kubernetes, where a Job migrates before the rollout",
    )
    outbox_poll_interval: float = Field(
        default=0.5, description="seconds between scans for outbox rows no commit handed over"
    )
    tls: Literal["on", "off"] = Field(
        default="on", description="on: mutual TLS for gRPC and NATS; off: plaintext, development only (warned)"
    )
    pki_dir: Path | None = Field(default=None, description="local CA and component certificates (<data_dir>/pki)")
    tls_hostnames: str = Field(
        default="", description="extra comma-separated host names / IPs put in the certificates the stack issues"
    )
    audit_head_interval: float = Field(
        default=10.0, description="seconds between publications of this service's audit chain head on NATS"
    )

    @property
    def tls_enabled(self) -> bool:
        return self.tls == "on"

    def hostnames(self) -> list[str]:
        return [h.strip() for h in self.tls_hostnames.split(",") if h.strip()] + [self.bind_host]

    def port(self, service: str) -> int:
        return int(getattr(self, f"{service}_port"))

    def metrics_port(self, service: str) -> int | None:
        return getattr(self, f"{service}_metrics_port", None)

    def target(self, service: str) -> str:
        return getattr(self, f"{service}_target") or f"{self.bind_host}:{self.port(service)}"

    def nats_servers(self) -> list[str]:
        return [u.strip() for u in self.nats_url.split(",") if u.strip()]
