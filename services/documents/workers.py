"""Render worker processes: every document is drawn in a separate process with a per-job time limit and a
memory limit (issue #13 item 4).

reportlab is CPU-bound and single-threaded, and a pathological input once held the only render thread
for minutes, blocking event-driven badge rendering and shutdown. Jobs now run in a pool of spawned worker
processes (pebble): a job over its time limit has its worker killed and replaced, a job over the memory
limit (RLIMIT_AS in the worker) fails with MemoryError, and either fails alone with a clear error while
the other workers go on. Print runs render their volumes in parallel on these workers.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures.process import BrokenProcessPool

from pebble import ProcessExpired, ProcessPool

from common.errors import FieldViolation, InvalidArgument, ResourceExhausted
from services.documents import render_process
from services.documents.domain.images import ImageRejected
from services.documents.domain.pdfkit import FontConfig

log = logging.getLogger(__name__)


class RenderPool:
    def __init__(self, *, workers: int, timeout: float, memory_mb: int, fonts: FontConfig) -> None:
        self.workers = workers
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.fonts = fonts
        self._pool: ProcessPool | None = None

    def start(self) -> ProcessPool:
        """Spawned, not forked: the service process holds gRPC and asyncio threads that a fork would copy."""
        render_process.keep_large_buffers_off_the_heap()
        self._pool = ProcessPool(
            max_workers=self.workers,
            initializer=render_process.init,
            initargs=(self.fonts, self.memory_mb * 1024 * 1024),
            context=multiprocessing.get_context("spawn"),
        )
        return self._pool

    def close(self) -> None:
        """Stop now: running jobs are abandoned (their callers have been cancelled by then)."""
        if self._pool is not None:
            self._pool.stop()
            self._pool.join(timeout=5)
            self._pool = None

    def _live_pool(self) -> ProcessPool:
        """The pool, replaced when pebble has marked it broken: that happens when workers die while no job
        runs (the OOM killer or an operator taking idle workers), and is for good — every later job would
        fail and this replica would render nothing while it reports SERVING."""
        if self._pool is not None and not self._pool.active:
            log.warning("render pool broken (its workers died); starting a new one")
            self._pool.stop()  # no join: it would block the event loop, and the broken pool has no jobs left
            self._pool = None
        return self._pool if self._pool is not None else self.start()

    async def _schedule(self, job: str, args: tuple, kwargs: dict, limit: float):
        def submit():
            pool = self._live_pool()
            return asyncio.wrap_future(pool.schedule(render_process.run, args=(job, args, kwargs), timeout=limit))

        try:
            return await submit()
        except BrokenProcessPool:
            # The pool broke while this job waited (a job that kills its own worker is ProcessExpired instead):
            # the job is not at fault, so it runs once more, on a new pool.
            return await submit()

    async def run(self, job: str, *args, time_limit: float | None = None, **kwargs):
        """Run the function named `job` ("module:function") with `*args, **kwargs` in a worker; cancelling
        the caller cancels the job (its worker is replaced). `time_limit` (seconds) overrides the pool's
        per-job limit."""
        limit = time_limit or self.timeout
        try:
            return await self._schedule(job, args, kwargs, limit)
        except TimeoutError:
            log.warning("render job %s stopped after its time limit of %.0f s", job, limit)
            raise ResourceExhausted(
                "RENDER_TIME_LIMIT", f"文档生成超过时限（{limit:g} 秒）已中止，请检查输入内容", subject=job
            ) from None
        except MemoryError:
            log.warning("render job %s stopped at its memory limit of %d MB", job, self.memory_mb)
            raise ResourceExhausted(
                "RENDER_MEMORY_LIMIT",
                f"文档生成超出内存上限（{self.memory_mb} MB）已中止，请检查输入内容",
                subject=job,
            ) from None
        except (ProcessExpired, BrokenProcessPool) as e:  # the pool broke again while the job ran once more
            log.warning("render worker died in %s: %s", job, e)
            raise ResourceExhausted("RENDER_WORKER_DIED", "文档生成进程异常退出，已中止", subject=job) from None
        except ImageRejected as e:
            raise InvalidArgument(e.reason, [FieldViolation("badge", e.description)]) from None
