"""One supervisor for a service's background work: outbox relay, consumers, sweeps, checkpoints, timers.

Issue 13: a consumer once ended on an IndexError without a word while health stayed SERVING. Here a task
that raises (or returns: they are meant to run until cancelled) is logged with its traceback and started
again with exponential backoff; while a task keeps failing the service reports NOT_SERVING, and once the
task has run `stable_after` seconds without failing it counts as recovered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from common import metrics

log = logging.getLogger(__name__)

TaskFactory = Callable[[], Awaitable[None]]


class Supervisor:
    def __init__(
        self,
        *,
        on_health: Callable[[bool], Awaitable[None]] | None = None,
        failing_after: int = 3,
        stable_after: float = 30.0,
        backoff: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self.on_health = on_health
        self.failing_after = failing_after
        self.stable_after = stable_after
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.failures: dict[str, int] = {}  # consecutive failures per task
        self.tasks: dict[str, asyncio.Task] = {}
        self._healthy = True
        self.stopping = False

    @property
    def failing(self) -> list[str]:
        return sorted(name for name, n in self.failures.items() if n >= self.failing_after)

    def start(self, name: str, factory: TaskFactory) -> asyncio.Task:
        self.failures[name] = 0
        task = asyncio.create_task(self._supervise(name, factory), name=name)
        self.tasks[name] = task
        return task

    async def _supervise(self, name: str, factory: TaskFactory) -> None:
        loop = asyncio.get_running_loop()
        delay = self.backoff
        while True:
            recovered = loop.call_later(self.stable_after, self._recovered, name)
            try:
                await factory()
                if self.stopping:  # e.g. a consumer told to stop at shutdown
                    return
                log.error("background task %s ended on its own; starting it again", name)
            except asyncio.CancelledError:
                raise
            except Exception:  # logged with its traceback, then restarted
                log.exception("background task %s failed; starting it again", name)
            finally:
                recovered.cancel()
            self.failures[name] += 1
            if self.failures[name] == 1:  # first failure after a stable run: the backoff starts afresh
                delay = self.backoff
            metrics.TASK_RESTARTS.labels(name).inc()
            await self._report()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff_max)

    def _recovered(self, name: str) -> None:
        if self.failures.get(name):
            log.info("background task %s runs again", name)
            self.failures[name] = 0
            asyncio.get_running_loop().create_task(self._report())

    async def _report(self) -> None:
        failing = self.failing
        metrics.TASKS_FAILING.set(len(failing))
        healthy = not failing
        if healthy != self._healthy:
            self._healthy = healthy
            if not healthy:
                log.error("background work keeps failing (%s): health NOT_SERVING", ", ".join(failing))
            if self.on_health is not None:
                await self.on_health(healthy)

    async def stop(self, names: list[str] | None = None) -> None:
        """Cancel the named tasks (all by default) and wait for them; from now on a task that ends is not
        started again."""
        self.stopping = True
        tasks = [t for n, t in self.tasks.items() if names is None or n in names]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
