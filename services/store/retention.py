"""Retention of run logs (issue 15 point 3): the per-item lines of finished runs older than
`[server] run_log_retention_days` are deleted by `serve`'s daily housekeeping; the runs' summary
rows (counts, status, times) stay, so history and the dashboard keep their figures.
"""

from __future__ import annotations

import datetime as dt

from services.store.db import Store


def prune_run_logs(store: Store, *, older_than_days: int, now: dt.datetime | None = None) -> int:
    """Delete the log lines of runs that ended more than `older_than_days` ago; 0 days keeps all.
    Returns the number of lines deleted."""
    if older_than_days <= 0:
        return 0
    cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=older_than_days)
    stamp = cutoff.strftime("%Y-%m-%dT%H:%M:%S")
    with store.write():
        return store.conn.execute(
            "DELETE FROM run_log WHERE run_id IN (SELECT id FROM runs WHERE ended_at IS NOT NULL AND ended_at < ?)",
            (stamp,)).rowcount
