"""Settings shared by every service and the operator CLI, read from environment variables.

Every variable is documented in README.md (Configuration). Services subclass `Settings` for their own
knobs; nothing is read at import time — call `Settings()` in a composition root.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICES = ("registry", "rules", "documents", "notify")
DEFAULT_PORTS = {"registry": 50051, "rules": 50052, "documents": 50053, "notify": 50054}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BJSV_", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="embedded SQLite files, NATS store, logs, pid files")
    bind_host: str = Field(default="127.0.0.1", description="address every gRPC server binds to")
    registry_port: int = DEFAULT_PORTS["registry"]
    rules_port: int = DEFAULT_PORTS["rules"]
    documents_port: int = DEFAULT_PORTS["documents"]
    notify_port: int = DEFAULT_PORTS["notify"]
    # host:port a service uses to reach another; defaults to bind_host:<port>. A balancer address in scale-out.
    registry_target: str | None = None
    rules_target: str | None = None
    documents_target: str | None = None
    notify_target: str | None = None

    nats_url: str = Field(default="nats://127.0.0.1:14222", description="comma-separated NATS URLs")
    nats_connect_timeout: float = Field(default=8.0, description="seconds the first NATS connect may take")
    nats_replicas: int = Field(default=1, description="JetStream stream replicas (3 on a NATS cluster)")
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "BJSV_DATABASE_URL"),
        description="PostgreSQL URL for scale-out; unset = one SQLite file per service under data_dir",
    )
    db_schema_prefix: str = Field(default="", description="prefix of the per-service PostgreSQL schema")
    log_format: str = Field(default="text", description="text | json")
    log_level: str = "INFO"
    shutdown_grace: float = Field(default=8.0, description="seconds in-flight calls get on SIGTERM")
    outbox_poll_interval: float = 0.5

    def port(self, service: str) -> int:
        return int(getattr(self, f"{service}_port"))

    def target(self, service: str) -> str:
        return getattr(self, f"{service}_target") or f"{self.bind_host}:{self.port(service)}"

    def nats_servers(self) -> list[str]:
        return [u.strip() for u in self.nats_url.split(",") if u.strip()]
