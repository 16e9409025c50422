"""Group commit for the decision log (D15): concurrent calls share one write transaction.

Every decision must be in the log (and its `decision.made` event in the outbox) before the caller gets
it. With one transaction per call, 200 single calls/s mean 200 SQLite commits/s plus as many outbox-relay
wake-ups. Here the first caller writes at once (no added latency when idle); callers arriving while that
write runs are written together by the next one, so the number of transactions adapts to the load.
Each write hands its `decision.made` rows to the outbox relay in memory (common.bus.OutboxRelay).
"""

from __future__ import annotations

import asyncio

from common.db import Database
from services.rules.storage import repository

# SQLite: up to this many decisions (without a shared input part such as a ProposeTeam pool) are committed
# on the event loop, which that blocks for ≲ 1 ms
INLINE_ROWS = 20


class DecisionLogWriter:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._pending: list[tuple[list[dict], list[dict], dict[str, bytes], asyncio.Future]] = []
        self._wake = asyncio.Event()
        self.transactions = 0

    async def append(self, rows: list[dict], outbox: list[dict], parts: dict[str, bytes] | None = None) -> None:
        """Return once `rows`, their outbox rows and the shared input parts they refer to are committed
        (raises what the write raised)."""
        fut = asyncio.get_running_loop().create_future()
        self._pending.append((rows, outbox, parts or {}, fut))
        self._wake.set()
        await asyncio.shield(fut)

    async def run(self) -> None:
        """The flusher: a background task of the server, so it runs under common.supervise (issue 13: an
        unexpected error is logged with its traceback and the flusher started again, health reflecting it)."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await self._write(batch)
                except Exception as exc:  # noqa: BLE001 — handed to every waiting caller
                    for *_, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                else:
                    self.transactions += 1
                    for *_, fut in batch:
                        if not fut.done():
                            fut.set_result(None)

    async def _write(self, batch: list[tuple[list[dict], list[dict], dict[str, bytes], asyncio.Future]]) -> None:
        args = {
            "rows": [r for b in batch for r in b[0]],
            "outbox": [o for b in batch for o in b[1]],
            "parts": {d: p for b in batch for d, p in b[2].items()},
        }
        if self.db.is_postgres or len(args["rows"]) > INLINE_ROWS or args["parts"]:
            await self.db.write(repository.log_decisions, **args)  # off the event loop
        else:  # a small local commit (~0.2 ms) costs less than the two thread hand-offs around it
            self.db.write_sync(repository.log_decisions, **args)
