"""Engine worker process: one durable_rules host, no threads, one evaluation at a time.

Started by `pool.WorkerPool` as `python -m services.rules.engine.worker <fd>`; it receives the rule sets
of one generation (pickled) as the first message on that socket, compiles them, runs every canary,
reports ready, then serves requests from its pipe until told to stop or the pipe closes. It holds no
state between evaluations (each one deletes its engine session), so killing it loses nothing: the
pool retries the request on a fresh worker.

Protocol (tuples over a multiprocessing Connection):
    → ("eval", version, kind, [facts, ...])   ← ("ok", [[rule ids], ...]) | ("error", text)
    → ("decide", request type, [item bytes], pinned version | None, offset, field prefix, trace, actor)
                                              ← ("ok", [(decision row, outbox row), ...])
                                                | ("domain", (error class, reason, message, metadata, violations))
    → ("stats",)                              ← ("ok", {"pid", "rss_kb", "evaluations", "open_sessions"})
    → ("stop",)                               (exits)
First message from the worker: ("ready", pid) or ("failed", text) when loading or a canary failed.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import sys
import traceback
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

from common.errors import DomainError
from services.rules.domain.ruleset import RuleSet

if TYPE_CHECKING:  # imported inside the worker once it starts (the engine loads there, not in the pool)
    from services.rules.domain.decisions import Decider
    from services.rules.domain.ruleset import Catalog
    from services.rules.engine.adapter import EngineHost

TRIM_EVERY = 2000


def _trim() -> None:
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to give back
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def rss_kb() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


class _SyncEngine:
    """The domain's Evaluator over this process's engine host, synchronous (services.rules.domain.run_sync)."""

    def __init__(self, host) -> None:
        self.host = host

    def evaluate_sync(self, version: str, kind: str, facts: list[dict]) -> list[list[str]]:
        return self.host.evaluate(version, kind, facts)

    async def evaluate(self, version: str, kind: str, facts: list[dict]) -> list[list[str]]:
        return self.evaluate_sync(version, kind, facts)


def domain_error_payload(exc: DomainError) -> tuple:
    violations = [tuple(vars(v).values()) for v in getattr(exc, "violations", [])]
    return (type(exc).__name__, exc.reason, exc.message, exc.metadata, violations)


def worker_main(conn: Connection) -> None:
    loaded = _load(conn)
    if loaded is not None:
        _serve(conn, *loaded)


def _load(conn: Connection) -> tuple[EngineHost, Catalog, Decider, _SyncEngine] | None:
    """Receive and load the rule sets, run their canaries, report ready; (host, catalog, decider, engine), or
    None after reporting a failure to the pool."""
    try:
        rulesets: list[RuleSet] = conn.recv()
        from services.rules.engine.adapter import EngineHost

        host = EngineHost()
        problems: list[str] = []
        for rs in rulesets:
            host.load(rs)
            problems += host.run_canaries(rs)
        if problems:
            conn.send(("failed", "; ".join(problems)))
            return None
        # the batch decisions run here end to end (services.rules.codec): parse, validate, facts, rules,
        # response bytes — so the gRPC front stays thin and both cores work
        from common.clock import Clock
        from services.rules.domain.decisions import Decider
        from services.rules.domain.ruleset import Catalog

        catalog = Catalog(tuple(rulesets), "")
        decider = Decider(Clock())
        engine = _SyncEngine(host)
        gc.freeze()  # the loaded engine and rule sets stay: no full collections walking them (~20 ms pauses)
        conn.send(("ready", os.getpid()))
    except Exception:  # noqa: BLE001 — report any load failure to the pool instead of dying silently
        conn.send(("failed", traceback.format_exc(limit=5)))
        return None
    return host, catalog, decider, engine


def _serve(conn: Connection, host: EngineHost, catalog: Catalog, decider: Decider, engine: _SyncEngine) -> None:
    since_trim = 0
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        op = msg[0]
        if op == "eval":
            try:
                conn.send(("ok", host.evaluate(msg[1], msg[2], msg[3])))
            except Exception as exc:  # noqa: BLE001 — an evaluation error is the request's, not the worker's
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
            since_trim += len(msg[3])
        elif op == "decide":
            _decide(conn, msg, catalog, decider, engine)
            since_trim += len(msg[2])
        elif op == "stats":
            _trim()  # report the resting RSS (what stays between evaluations), not a batch's working set
            since_trim = 0
            stats = {"pid": os.getpid(), "rss_kb": rss_kb(), "evaluations": host.evaluations}
            conn.send(("ok", {**stats, "open_sessions": host.open_sessions}))
        elif op == "stop":
            return
        else:
            conn.send(("error", f"unknown op {op!r}"))
        if since_trim >= TRIM_EVERY:
            # The native engine allocates per fact; glibc keeps the freed arenas, so RSS would sit at the
            # high-water mark of the largest batch. Giving them back keeps RSS flat (bench: 1M evals).
            _trim()
            since_trim = 0


def _decide(conn: Connection, msg: tuple, catalog: Catalog, decider: Decider, engine: _SyncEngine) -> None:
    from services.rules.codec import PROPOSE_TEAM, decide_blobs

    _, type_name, blobs, pinned, offset, prefix, trace, actor = msg
    try:
        decided = decide_blobs(
            decider, type_name, blobs, catalog, engine, pinned, offset, prefix, trace=trace, actor=actor
        )
        out = []
        for d in decided:
            if type_name != PROPOSE_TEAM:
                d.row.pop("input")  # the front has the request bytes already
            out.append((d.row, d.outbox))
        conn.send(("ok", out))
    except DomainError as exc:  # invalid facts, no rule set in force …: the caller's error
        conn.send(("domain", domain_error_payload(exc)))
    except Exception as exc:  # noqa: BLE001 — an evaluation error is the request's, not the worker's
        conn.send(("error", f"{type(exc).__name__}: {exc}"))


def main(argv: list[str]) -> None:
    worker_main(Connection(int(argv[1])))


if __name__ == "__main__":
    main(sys.argv)
