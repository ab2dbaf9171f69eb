"""One batch flow of the product in a process of its own (used by the benchmarks, issue 8).

Design notes: docs/design/benchmarks.md
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import product_clients  # noqa: E402


def _rss_now_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _peak_rss_mib() -> float:
    """This process's own peak resident set (VmHWM); ru_maxrss where /proc has no such line."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main(flow: str, db_path: str, info: dict, trace: bool, full: bool) -> dict:
    import logging

    logging.getLogger("services").setLevel(logging.ERROR)  # retries under faults are expected
    from services.flows import FlowContext, run_flow
    from services.store.db import Store

    with Store(db_path) as store:
        async with product_clients(info) as (credly, docebo):
            ctx = FlowContext(store, credly, docebo)
            rss_before = _rss_now_mib()
            if trace:
                import tracemalloc

                tracemalloc.start()
            started = time.perf_counter()
            summary = await run_flow(flow, ctx, trigger="cli", full=full)
            wall = time.perf_counter() - started
            from services.store.runs import query_run_log

            first = query_run_log(store, summary.run_id, limit=1)
            peak_traced = None
            if trace:
                peak_traced = tracemalloc.get_traced_memory()[1] / 2**20
                tracemalloc.stop()
            return {
                "flow": flow,
                "status": summary.status,
                "mode": getattr(summary, "mode", ""),
                "first_log_line": first[0]["message"] if first else "",
                "reason": summary.reason,
                "counts": summary.counts,
                "wall_s": wall,
                "calls": {"credly": credly.calls.snapshot(), "docebo": docebo.calls.snapshot()},
                "retries": {"credly": credly.calls.retries(), "docebo": docebo.calls.retries()},
                "concurrency": {"credly": credly.policy.concurrency, "docebo": docebo.policy.concurrency},
                "max_in_flight": {"credly": credly.policy.max_in_flight, "docebo": docebo.policy.max_in_flight},
                "docebo_limiter": docebo.limiter.describe(),
                "rss_before_mib": rss_before,
                "peak_rss_mib": _peak_rss_mib(),
                "tracemalloc_peak_mib": peak_traced,
            }


if __name__ == "__main__":
    flow_name, db, conn = sys.argv[1:4]
    report = asyncio.run(main(flow_name, db, json.loads(conn), "--tracemalloc" in sys.argv[4:], "--full" in sys.argv[4:]))
    print(json.dumps(report))
