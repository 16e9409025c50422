"""Group commit for the decision log (D15): concurrent calls share one write transaction.

Every decision must be in the log (and its `decision.made` event in the outbox) before the caller gets
it. With one transaction per call, 200 single calls/s mean 200 SQLite commits/s plus as many outbox-relay
wake-ups. Here the first caller writes at once (no added latency when idle); callers arriving while that
write runs are written together by the next one, so the number of transactions adapts to the load.
The outbox relay is woken at most every 100 ms by these writes, so `decision.made` events leave within
~0.1–0.5 s instead of costing a relay cycle per call.
"""

from __future__ import annotations

import asyncio
import time

from common.db import Database
from services.rules.storage import repository


class DecisionLogWriter:
    def __init__(self, db: Database, *, wake_every: float = 0.1) -> None:
        self.db = db
        self.wake_every = wake_every
        self._last_wake = 0.0
        self._pending: list[tuple[list[dict], list[dict], asyncio.Future]] = []
        self._flusher: asyncio.Task | None = None
        self.transactions = 0

    async def append(self, rows: list[dict], outbox: list[dict]) -> None:
        """Return once `rows` and their outbox rows are committed (raises what the write raised)."""
        fut = asyncio.get_running_loop().create_future()
        self._pending.append((rows, outbox, fut))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        await asyncio.shield(fut)

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                # Wake the outbox relay at most every `wake_every` seconds: a relay cycle costs several
                # transactions, and one per single call dominated the service's CPU (bench). Rows written
                # without a wake-up are published by the next wake or the relay's poll (BJSV_OUTBOX_POLL_INTERVAL).
                now = time.monotonic()
                write = self.db.write_sync_no_hooks
                if now - self._last_wake >= self.wake_every:
                    write, self._last_wake = self.db.write_sync, now
                try:
                    await asyncio.to_thread(write, repository.log_decisions, rows=[r for b in batch for r in b[0]],
                                            outbox=[o for b in batch for o in b[1]])
                except Exception as exc:  # noqa: BLE001 — handed to every waiting caller
                    for _, _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                else:
                    self.transactions += 1
                    for _, _, fut in batch:
                        if not fut.done():
                            fut.set_result(None)
        finally:
            self._flusher = None
