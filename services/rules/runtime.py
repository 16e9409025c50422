"""Rule-set generations, blue-green hot reload and replay pools.

A generation = one catalog (the rule sets loaded from the folders + policy file) + the engine worker pool
that hosts exactly those versions. Requests pin the generation they started with (`use()`), so a reload
never mixes versions inside one decision. Reload: read + validate the files (Python canaries), start a
fresh pool (engine canaries in every worker), switch the pointer, then drain and stop the old pool —
which also returns the memory of the old version (durable_rules never unregisters a ruleset). A broken
rule file is rejected with its precise message and the old generation keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from common.clock import Clock
from common.db import StartupError
from common.errors import FailedPrecondition, PreconditionViolation
from services.rules.domain.ruleset import Catalog, RuleSet, RuleSetError, fingerprint, load_catalog
from services.rules.engine.pool import WorkerPool, WorkerStartError

log = logging.getLogger("bjsv.rules.runtime")


@dataclass
class Generation:
    catalog: Catalog
    pool: WorkerPool
    loaded_at: dt.datetime
    inflight: int = 0
    retired: bool = False
    idle: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class ReloadResult:
    changed: bool
    previous_versions: tuple[str, ...]
    generation: Generation


class RulesRuntime:
    def __init__(
        self,
        rules_dir: Path,
        policy_file: Path | None,
        *,
        workers: int,
        clock: Clock,
        on_loaded: Callable[[Generation, Catalog | None], Awaitable[None]] | None = None,
    ) -> None:
        self.rules_dir = rules_dir
        self.policy_file = policy_file
        self.workers = workers
        self.clock = clock
        self.on_loaded = on_loaded
        self._gen: Generation | None = None
        self._lock = asyncio.Lock()
        self.known: dict[str, tuple[RuleSet, dt.datetime]] = {}  # every version this process loaded
        self.reloads = 0
        self.last_error: str = ""
        self._draining: set[asyncio.Task] = set()

    @property
    def current(self) -> Generation:
        if self._gen is None:
            raise RuntimeError("rules runtime not started")
        return self._gen

    async def start(self) -> None:
        try:
            catalog = load_catalog(self.rules_dir, self.policy_file)
        except RuleSetError as exc:
            raise StartupError(f"rule sets cannot be loaded: {exc}") from None
        async with self._lock:
            self._gen = await self._start_generation(catalog)
        if self.on_loaded:
            await self.on_loaded(self._gen, None)

    async def _start_generation(self, catalog: Catalog) -> Generation:
        pool = await WorkerPool(list(catalog.rulesets), size=self.workers).start()
        now = self.clock.now()
        for rs in catalog.rulesets:
            self.known.setdefault(rs.version, (rs, now))
        return Generation(catalog, pool, now)

    @contextlib.asynccontextmanager
    async def use(self) -> AsyncIterator[Generation]:
        gen = self.current
        gen.inflight += 1
        try:
            yield gen
        finally:
            gen.inflight -= 1
            if gen.inflight == 0:
                gen.idle.set()

    def changed_on_disk(self) -> bool:
        return fingerprint(self.rules_dir, self.policy_file) != self.current.catalog.fingerprint

    async def reload(self) -> ReloadResult:
        """Load the folders again; a new version replaces the old one blue-green. Raises RULESET_INVALID."""
        async with self._lock:
            old = self.current
            try:
                catalog = load_catalog(self.rules_dir, self.policy_file)
            except RuleSetError as exc:
                self.last_error = str(exc)
                log.error(
                    "rule-set reload rejected, version %s keeps serving: %s",
                    [v[:12] for v in old.catalog.versions],
                    exc,
                )
                raise FailedPrecondition(
                    "RULESET_INVALID",
                    [PreconditionViolation("ruleset.valid", str(self.rules_dir), f"规则集文件有误，未加载：{exc}")],
                    metadata={"serving_versions": ",".join(old.catalog.versions)},
                ) from None
            if catalog.versions == old.catalog.versions:
                old.catalog.fingerprint = catalog.fingerprint  # e.g. only comments changed
                return ReloadResult(False, old.catalog.versions, old)
            try:
                fresh = await self._start_generation(catalog)
            except WorkerStartError as exc:
                self.last_error = str(exc)
                raise FailedPrecondition(
                    "RULESET_INVALID",
                    [
                        PreconditionViolation(
                            "ruleset.canary", str(self.rules_dir), f"规则引擎校验未通过，未加载：{exc}"
                        )
                    ],
                    metadata={"serving_versions": ",".join(old.catalog.versions)},
                ) from None
            self._gen = fresh
            self.reloads += 1
            self.last_error = ""
            old.retired = True
            task = asyncio.create_task(self._drain(old))
            self._draining.add(task)
            task.add_done_callback(self._draining.discard)
            log.info(
                "rule sets reloaded: %s -> %s",
                [v[:12] for v in old.catalog.versions],
                [v[:12] for v in catalog.versions],
            )
        if self.on_loaded:
            await self.on_loaded(fresh, old.catalog)
        return ReloadResult(True, old.catalog.versions, fresh)

    async def _drain(self, gen: Generation) -> None:
        if gen.inflight:
            gen.idle.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(gen.idle.wait(), timeout=60)
        await gen.pool.close(drain=True)

    async def watch(self, interval: float) -> None:
        """Poll the files; reload when they change (errors are logged, the old version keeps serving)."""
        while True:
            await asyncio.sleep(interval)
            try:
                if self.changed_on_disk():
                    await self.reload()
            except FailedPrecondition:
                # remember this broken content so it is not re-parsed every tick
                self.current.catalog.fingerprint = fingerprint(self.rules_dir, self.policy_file)
            except Exception:
                log.exception("rule-set watcher failed")

    async def watch_workers(self, every: float = 1.0) -> None:
        """Replace engine workers of the pool in service that died while idle. A background task of the
        server, so it runs under common.supervise (an error is logged and the watcher restarted, issue 13)."""
        while True:
            await asyncio.sleep(every)
            if self._gen is not None:
                self._gen.pool.replace_dead()

    async def drained(self) -> None:
        """Wait until retired generations have stopped their workers (tests, benchmarks)."""
        while self._draining:
            await asyncio.gather(*list(self._draining), return_exceptions=True)

    @contextlib.asynccontextmanager
    async def replay_pool(self, rs: RuleSet) -> AsyncIterator[WorkerPool]:
        """A pool serving `rs`: the current one if it hosts that version, else a temporary one-worker pool."""
        async with self.use() as gen:
            if gen.catalog.by_version(rs.version) is not None:
                yield gen.pool
                return
        pool = await WorkerPool([rs], size=1).start()
        try:
            yield pool
        finally:
            await pool.close()

    async def close(self) -> None:
        await self.drained()
        if self._gen is not None:
            await self._gen.pool.close(drain=True)
