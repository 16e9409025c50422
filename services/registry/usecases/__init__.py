"""Registry use cases: each one owns its transaction (one `db.write` / `db.read`) and the outbox rows of the
events it causes; they call the domain for every rule and the repository for every row.

- `context.py`       the shared dependencies (database, clock, policy, rules port) and the SQLite write queue
- `errors.py`        domain errors → common.errors (the gRPC mapping), NotFound for missing rows
- `organisations.py` agencies (Table 3) and institutions (评价机构)
- `supervisors.py`   registration, updates, roster import (第五条–第九条)
- `appointments.py`  appoint, renew, suspend, reinstate, revoke, expiry sweep (第十条, 第十三条, 第二十七条)
- `badges.py`        issue (allocation, 附件1), revoke, filing (第十一条, 第十二条)

Each function taking `session` runs inside the caller's transaction (the servicer's, or the workflow's when
a 第二十七条 sanction commits with its case decision); the `Registry*` classes open the transaction.
Results are rendered by a `render(session, row)` callback inside the transaction, so the API edge turns
rows into protos while lazily loaded columns are still at hand.
"""
