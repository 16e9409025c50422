"""Settings of the notify service (env BJSV_*; see README Configuration)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from common.config import Settings


class NotifySettings(Settings):
    smtp_host: str = Field(default="", description="SMTP server host; empty disables e-mail (deliveries skipped)")
    smtp_port: int = Field(default=25, description="SMTP server port")
    smtp_from: str = Field(default="bjsv-notify@localhost", description="From address of notification e-mails")
    smtp_timeout: float = Field(default=10.0, description="seconds per SMTP conversation")
    notify_clock: str = Field(default="real", description='"real", "fixed:<ISO instant>" or "offset:<seconds>"')
    notify_tick_interval: float = Field(default=1.0, description="seconds between scheduler ticks")
    notify_delivery_lease: float = Field(
        default=60.0, description="seconds a replica holds a delivery it is sending; after that another retries"
    )
    notify_retry_max_attempts: int = Field(default=6, description="attempts per delivery before dead-lettering")
    notify_retry_base_delay: float = Field(default=2.0, description="first retry delay, doubled each attempt")
    notify_retry_max_delay: float = Field(default=600.0, description="cap of the retry delay")
    notify_delivery_concurrency: int = Field(default=8, description="deliveries sent in parallel per replica")
    notify_channels: str = Field(default="nats,email", description="outbound channels (the inbox is always on)")
    notify_send_time: str = Field(default="09:00", description="local time (Asia/Shanghai) date-based notices fire")
    notify_ack_wait: float = Field(
        default=30.0, description="seconds before an unacknowledged registry event is redelivered (after a crash)"
    )
    notify_documents_timeout: float = Field(default=10.0, description="seconds to fetch/render an attachment")
    calendar_file: Path | None = Field(
        default=None,
        description="operator calendar file (YAML/JSON) for years chinese-calendar does not cover (D5)",
    )
