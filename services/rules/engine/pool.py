"""Supervised pool of engine worker processes fed by the asyncio gRPC front.

- Workers are spawned (never forked from the gRPC process) with the rule sets of one generation and
  run their canaries before they are used.
- Each worker serves one evaluation at a time; a call takes an idle worker, sends, awaits the answer on
  the event loop (asyncio streams over the socket pair: no thread hand-off, whose GIL wait showed in the
  single-call p99) and gives the worker back.
- A worker that dies mid-call (SIGKILL, SIGSEGV in the native engine …) is replaced and the call is
  retried once on another worker; the caller only sees an error if the retry dies too. One that dies
  while idle is noticed within a second (and before it is used) and replaced.
- Large batches are split across the workers so both cores are used.
- `close(drain=True)` waits for in-flight calls, then stops the processes — used for blue-green
  reloads: old generations drain while the new one already serves, and their memory goes with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import pickle
import socket
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

from prometheus_client import Counter

from common import errors
from common.errors import (
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    PreconditionViolation,
    Unavailable,
)
from services.rules.domain.ruleset import RuleSet

log = logging.getLogger("bjsv.rules.pool")
WORKER_RESTARTS = Counter("bjsv_rules_worker_restarts", "engine worker processes replaced after they died")


class WorkerDied(Exception):
    """The worker process ended while serving a call."""


class WorkerStartError(RuntimeError):
    """A worker could not load the rule sets or failed a canary."""


def rebuild_domain_error(cls: str, reason: str, message: str, metadata: dict, violations: list) -> DomainError:
    """The domain error a worker reported, as the same exception class in the front."""
    if cls == "InvalidArgument":
        return InvalidArgument(reason, [FieldViolation(*v) for v in violations], message, metadata=metadata)
    if cls == "FailedPrecondition":
        return FailedPrecondition(reason, [PreconditionViolation(*v) for v in violations], message, metadata=metadata)
    err = DomainError(reason, message, metadata=metadata)
    err.code = getattr(errors, cls, DomainError).code
    return err


class EngineUnavailable(Unavailable):
    """Evaluation failed twice because workers died (poison request or a broken host), or no worker
    could be (re)started in time. Maps to UNAVAILABLE: the caller may retry."""

    def __init__(self, detail: str) -> None:
        super().__init__("ENGINE_UNAVAILABLE", f"规则引擎暂不可用，请稍后重试（{detail}）")


def _frame(msg: tuple) -> tuple[bytes, bytes]:
    """`msg` as multiprocessing.Connection.send frames it: a big-endian length (-1 + 8 bytes past 2 GiB), pickle."""
    data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
    n = len(data)
    return (struct.pack("!i", n) if n <= 0x7FFFFFFF else struct.pack("!iQ", -1, n)), data


class _Worker:
    """One engine process: `python -m services.rules.engine.worker <fd>` on one end of a socket pair.

    A plain subprocess (not multiprocessing spawn) so the parent's __main__ is never re-imported and
    nothing of the gRPC process (threads, sockets) is inherited. Start-up (spawn, rule sets, canaries) is
    blocking and runs in a thread; `attach` then moves the socket onto the event loop. Messages are framed
    as multiprocessing.Connection frames them (the worker side uses a Connection).
    """

    def __init__(self, rulesets: list[RuleSet], start_timeout: float) -> None:
        ours, theirs = socket.socketpair()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.rules.engine.worker", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        self.sock = ours
        self.pid = self.proc.pid
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        handshake = Connection(os.dup(ours.fileno()))
        try:
            self._handshake(handshake, rulesets, start_timeout)
        finally:
            handshake.close()

    def _handshake(self, conn: Connection, rulesets: list[RuleSet], start_timeout: float) -> None:
        try:
            conn.send(list(rulesets))
            ready = conn.poll(start_timeout)
        except OSError:
            ready = False
        if not ready:
            self.kill()
            raise WorkerStartError(f"engine worker did not become ready within {start_timeout}s")
        try:
            status, detail = conn.recv()
        except (EOFError, OSError) as exc:
            self.kill()
            raise WorkerStartError(f"engine worker exited during start (exit code {self.proc.poll()})") from exc
        if status != "ready":
            self.kill()
            raise WorkerStartError(f"engine worker rejected the rule sets: {detail}")

    async def attach(self) -> _Worker:
        self.reader, self.writer = await asyncio.open_unix_connection(sock=self.sock)
        return self

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    async def call(self, msg: tuple, answer_within: float = 60.0) -> Any:
        reader, writer = self.reader, self.writer
        if reader is None or writer is None:
            raise RuntimeError("engine worker called before it was started")
        try:
            writer.writelines(_frame(msg))
            async with asyncio.timeout(answer_within):  # a hung engine is treated like a dead one
                await writer.drain()
                (size,) = struct.unpack("!i", await reader.readexactly(4))
                if size == -1:
                    (size,) = struct.unpack("!Q", await reader.readexactly(8))
                status, payload = pickle.loads(await reader.readexactly(size))
        except TimeoutError:
            self.kill()
            raise WorkerDied(f"engine worker {self.pid} gave no answer within {answer_within}s; killed") from None
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            raise WorkerDied(f"engine worker {self.pid} died (exit code {self.proc.poll()})") from exc
        if status == "error":
            raise RuntimeError(payload)
        if status == "domain":
            raise rebuild_domain_error(*payload)
        return payload

    async def stop(self, exit_within: float = 2.0) -> None:
        if self.writer is not None:
            with contextlib.suppress(OSError):
                self.writer.writelines(_frame(("stop",)))
                await self.writer.drain()
        try:
            await asyncio.to_thread(self.proc.wait, exit_within)
        except subprocess.TimeoutExpired:
            self.kill()
        self._close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(2.0)
        except subprocess.TimeoutExpired:
            log.error("engine worker %s did not exit after SIGKILL", self.pid)
        self._close()

    def _close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        else:
            self.sock.close()


class WorkerPool:
    def __init__(
        self, rulesets: list[RuleSet], size: int = 2, *, split_min: int = 200, start_timeout: float = 30.0
    ) -> None:
        self.rulesets = list(rulesets)
        self.size = size
        self.split_min = split_min
        self.start_timeout = start_timeout
        self.workers: list[_Worker] = []
        # LIFO: a lone call goes to the worker that served the last one, whose caches are still warm
        self._idle: asyncio.LifoQueue[_Worker] = asyncio.LifoQueue()
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="rules-pool")  # start-ups only
        self._inflight = 0
        self._drained = asyncio.Event()
        self._closed = False
        self.replaced = 0
        self._tasks: set[asyncio.Future] = set()  # replacements under way
        self.retried = 0

    async def _spawn(self) -> _Worker:
        worker = await asyncio.get_running_loop().run_in_executor(
            self._executor, _Worker, self.rulesets, self.start_timeout
        )
        return await worker.attach()

    async def start(self) -> WorkerPool:
        started = await asyncio.gather(*[self._spawn() for _ in range(self.size)], return_exceptions=True)
        errors = [w for w in started if isinstance(w, BaseException)]
        for w in started:
            if isinstance(w, _Worker):
                self.workers.append(w)
                self._idle.put_nowait(w)
        if errors:
            await self.close(drain=False)
            raise errors[0]
        log.info("engine workers ready: pids %s, versions %s", self.pids(), [r.version[:12] for r in self.rulesets])
        return self

    def pids(self) -> list[int]:
        return [w.pid for w in self.workers]

    def _background(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def replace_dead(self) -> None:
        """Replace workers that died while idle (the next call would otherwise find out the hard way); called
        every second by the service's supervised watcher (RulesRuntime.watch_workers)."""
        for w in list(self.workers):
            if not w.alive and not self._closed:
                self._background(self._replace(w))

    async def _replace(self, dead: _Worker) -> None:
        if dead not in self.workers:  # already being replaced
            return
        self.workers.remove(dead)
        dead.kill()
        if self._closed:
            return
        for attempt in range(3):
            try:
                fresh = await self._spawn()
            except WorkerStartError:
                log.exception("replacement engine worker failed to start (attempt %d)", attempt + 1)
                continue
            if self._closed:
                await fresh.stop()
                return
            self.workers.append(fresh)
            self._idle.put_nowait(fresh)
            self.replaced += 1
            WORKER_RESTARTS.inc()
            log.warning("engine worker %s died; replaced by %s", dead.pid, fresh.pid)
            return

    async def _take(self) -> _Worker:
        while True:
            try:
                worker = await asyncio.wait_for(self._idle.get(), timeout=self.start_timeout * 2)
            except TimeoutError:
                raise EngineUnavailable("no engine worker available") from None
            if worker.alive:
                return worker
            self._background(self._replace(worker))  # died while idle: not a failed attempt

    def _give_back(self, worker: _Worker, exchange: asyncio.Future) -> None:
        """After an exchange: an intact worker goes back to the idle queue, a dead one is replaced."""
        if not exchange.cancelled() and isinstance(exchange.exception(), WorkerDied):
            self._background(self._replace(worker))
        else:
            self._idle.put_nowait(worker)

    async def _call(self, msg: tuple) -> Any:
        self._inflight += 1
        try:
            for attempt in (0, 1):
                worker = await self._take()
                # The exchange runs to its end even if this caller is cancelled (a half-read answer would
                # desynchronise the socket); the worker goes back only then.
                exchange = asyncio.ensure_future(worker.call(msg))
                exchange.add_done_callback(functools.partial(self._give_back, worker))
                try:
                    return await asyncio.shield(exchange)
                except WorkerDied:
                    if attempt == 1:
                        raise EngineUnavailable("engine workers died twice on this request") from None
                    self.retried += 1
        finally:
            self._inflight -= 1
            if self._inflight == 0:
                self._drained.set()
        raise AssertionError("unreachable")

    async def evaluate(self, version: str, kind: str, facts: list[dict]) -> list[list[str]]:
        n = len(facts)
        if n == 0:
            return []
        parts = min(self.size, max(1, n // self.split_min))
        if parts == 1:
            return await self._call(("eval", version, kind, facts))
        step = -(-n // parts)
        chunks = await asyncio.gather(
            *[self._call(("eval", version, kind, facts[i : i + step])) for i in range(0, n, step)]
        )
        return [fired for chunk in chunks for fired in chunk]

    async def decide(
        self,
        type_name: str,
        blobs: list[bytes],
        pinned: str | None,
        prefix: str = "requests",
        *,
        trace: str = "",
        actor: str = "",
    ) -> list[tuple[dict, dict]]:
        """Batch decisions end to end in the workers (services.rules.codec.decide_blobs), split across them."""
        n = len(blobs)
        if n == 0:
            return []
        parts = min(self.size, max(1, n // self.split_min))
        step = -(-n // parts)
        chunks = await asyncio.gather(
            *[
                self._call(("decide", type_name, blobs[i : i + step], pinned, i, prefix, trace, actor))
                for i in range(0, n, step)
            ]
        )
        return [item for chunk in chunks for item in chunk]

    async def stats(self) -> list[dict]:
        """Stats of every worker: takes all of them (waiting for running calls), asks each, gives them back."""
        held = [await self._take() for _ in range(len(self.workers))]
        try:
            return sorted([await w.call(("stats",)) for w in held], key=lambda s: s["pid"])
        finally:
            for w in held:
                self._idle.put_nowait(w)

    async def close(self, drain: bool = True, drain_seconds: float = 30.0) -> None:
        if drain and self._inflight:
            self._drained.clear()
            deadline = time.monotonic() + drain_seconds
            while self._inflight and time.monotonic() < deadline:
                try:
                    await asyncio.wait_for(self._drained.wait(), timeout=max(0.01, deadline - time.monotonic()))
                except TimeoutError:
                    break
                self._drained.clear()
        self._closed = True
        # Replacements are not cancelled: one cancelled mid-start would leave its process behind. Each
        # finishes its start and stops the fresh worker because the pool is closed.
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*[w.stop() for w in self.workers])
        self.workers.clear()
        self._executor.shutdown(wait=False)
