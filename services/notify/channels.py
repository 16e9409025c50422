"""Outbound channel adapters: e-mail over SMTP (PDF attached), per-recipient NATS subjects, documents.

Each ``send`` either returns (the channel accepted it) or raises ``SendError`` with an English reason code;
the delivery worker decides retry or dead letter.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import smtplib
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any

import grpc

from bjsv.documents.v1 import documents_pb2, documents_pb2_grpc
from bjsv.events.v1 import envelope_pb2
from bjsv.notify.v1 import events_pb2
from common import clients
from common.bus import MSG_ID, Bus
from services.notify.domain.delivery import SendError

log = logging.getLogger(__name__)

INBOX_SUBJECT_PREFIX = "bjsv.notify.inbox"


def inbox_subject(recipient: str) -> str:
    """ "agencies/08" → "bjsv.notify.inbox.agencies.08" (one subject per recipient organisation)."""
    tokens = [re.sub(r"[^A-Za-z0-9_-]", "_", t) or "_" for t in recipient.split("/")]
    return ".".join([INBOX_SUBJECT_PREFIX, *tokens])


def message_id(key: str) -> str:
    """A stable Message-ID per idempotency key, so a receiving system can drop a resend."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}@bjsv-notify>"


class DocumentFetcher:
    """Fetches (or, for district reports, triggers) the PDF of a notification from the documents service."""

    def __init__(self, target: str, timeout: float) -> None:
        self.target = target
        self.timeout = timeout
        self._channel: grpc.aio.Channel | None = None

    def _stub(self) -> documents_pb2_grpc.DocumentsServiceStub:
        if self._channel is None:
            self._channel = clients.channel(self.target)
        return documents_pb2_grpc.DocumentsServiceStub(self._channel)

    async def get(self, name: str) -> tuple[str, bytes]:
        """(file name, bytes) of a stored document."""
        try:
            meta, chunks = None, []
            async for item in self._stub().GetDocument(
                documents_pb2.GetDocumentRequest(name=name), timeout=self.timeout
            ):
                if item.HasField("document"):
                    meta = item.document
                else:
                    chunks.append(item.chunk)
        except grpc.aio.AioRpcError as e:
            permanent = e.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)
            raise SendError(
                "DOCUMENT_UNAVAILABLE", f"{name}: {e.code().name} {e.details()}", permanent=permanent
            ) from None
        file_name = meta.file_name if meta and meta.file_name else f"{name.replace('/', '-')}.pdf"
        return file_name, b"".join(chunks)

    async def district_report(self, data: bytes, *, may_render: bool) -> tuple[str, str, bytes]:
        """Find or render the district report (第二十四条); (document name, file name, bytes).

        The documents service renders it itself on period.closed; we look it up first and, while
        ``may_render`` is false, wait for it (retryable DOCUMENT_NOT_READY) instead of rendering a twin.
        """
        report = documents_pb2.DistrictReportData.FromString(data)
        try:
            found = await self._stub().ListDocuments(
                documents_pb2.ListDocumentsRequest(
                    kind=documents_pb2.DOCUMENT_KIND_DISTRICT_REPORT, subject=report.name, page_size=1
                ),
                timeout=self.timeout,
            )
            if found.documents:
                doc = found.documents[0]
                file_name, content = await self.get(doc.name)
                return doc.name, file_name, content
            if not may_render:
                raise SendError("DOCUMENT_NOT_READY", f"{report.name} not rendered yet")
            resp = await self._stub().RenderDistrictReport(
                documents_pb2.RenderDistrictReportRequest(report=report, include_content=True), timeout=self.timeout
            )
        except grpc.aio.AioRpcError as e:
            raise SendError("DOCUMENT_UNAVAILABLE", f"{report.name}: {e.code().name} {e.details()}") from None
        return resp.document.name, resp.document.file_name or "district-report.pdf", resp.content

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close(grace=None)


class EmailSender:
    """Sends one notification as an e-mail (smtplib in a worker thread)."""

    def __init__(self, *, host: str, port: int, sender: str, timeout: float) -> None:
        self.host, self.port, self.sender, self.timeout = host, port, sender, timeout

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    def build(self, item: dict[str, Any], attachment: tuple[str, bytes] | None) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = item["title"]
        msg["From"] = self.sender
        msg["To"] = formataddr((item["display_name"], item["email"])) if item["display_name"] else item["email"]
        msg["Message-ID"] = message_id(item["key"]) if item.get("key") else make_msgid()
        msg["X-Bjsv-Idempotency-Key"] = item["notification_key"]
        msg["X-Bjsv-Recipient"] = item["recipient"]
        articles = "、".join(item["articles"])
        text = item["body"]
        if articles:
            text += f"\n\n依据条款：{articles}"
        ref = f"notifications/{item['notification_id']}"
        text += f"\n\n（本邮件由北京市职业技能等级认定质量督导系统自动发送，通知编号 {ref}）"
        msg.set_content(text, charset="utf-8")
        if attachment is not None:
            file_name, content = attachment
            msg.add_attachment(content, maintype="application", subtype="pdf", filename=file_name)
        return msg

    def _send_sync(self, msg: EmailMessage) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as e:
            raise SendError("SMTP_RECIPIENT_REFUSED", str(e.recipients), permanent=True) from None
        except smtplib.SMTPResponseException as e:
            permanent = 500 <= e.smtp_code < 600
            reason = "SMTP_REJECTED" if permanent else "SMTP_TEMPORARY_FAILURE"
            raise SendError(reason, f"{e.smtp_code} {e.smtp_error!r}", permanent=permanent) from None
        except (OSError, smtplib.SMTPException) as e:
            raise SendError("SMTP_UNAVAILABLE", f"{self.host}:{self.port}: {e}") from None

    async def send(self, msg: EmailMessage) -> None:
        await asyncio.to_thread(self._send_sync, msg)


class NatsInboxSender:
    """Publishes a notification on its recipient's subject (JetStream, Nats-Msg-Id = delivery key)."""

    def __init__(self, bus: Bus | None, timeout: float = 5.0) -> None:
        self.bus = bus
        self.timeout = timeout

    async def send(self, item: dict[str, Any]) -> None:
        if self.bus is None or self.bus.js is None:
            raise SendError("NATS_UNAVAILABLE", "not connected")
        payload = events_pb2.InboxMessage(
            notification=f"notifications/{item['notification_id']}",
            recipient=item["recipient"],
            kind=item["kind"],
            title=item["title"],
            body=item["body"],
            articles=item["articles"],
            subject=item["subject"],
            due_date=item["due_date"],
            idempotency_key=item["notification_key"],
            document_id=item["document_id"],
        )
        env = envelope_pb2.EventEnvelope(
            event_id=hashlib.sha256(item["key"].encode()).hexdigest()[:32],
            type="inbox.message",
            source="notify",
            subject=payload.notification,
        )
        env.occurred_time.GetCurrentTime()
        env.payload.Pack(payload)
        try:
            await self.bus.js.publish(
                inbox_subject(item["recipient"]),
                env.SerializeToString(),
                headers={MSG_ID: item["key"]},
                timeout=self.timeout,
            )
        except Exception as e:  # noqa: BLE001 - any NATS trouble is a retryable channel failure
            raise SendError("NATS_UNAVAILABLE", f"{type(e).__name__}: {e}") from None
