"""One batch flow of the product in a process of its own (used by the benchmarks, issue 8).

    python benchmarks/_flow_worker.py FLOW DB_PATH CONNECTION_JSON [--full] [--tracemalloc]

Builds the product's clients with `services.clients.factory` (Docebo's 1,000 calls/hour client-side
limit switched off: `rate_limit_per_hour = 0`), runs `run_flow(FLOW)` on the database and prints
one JSON line: the run's mode (F7/F6: full or incremental; --full forces full), wall time of the run alone (not Python's start-up or imports), status, counts,
the clients' CallCounter snapshots and retries, the peak resident set size of this process
(`VmHWM`) and the resident size before the run; with --tracemalloc also Python's peak traced
allocation during the run (tracemalloc slows the run down: its wall time is then not comparable).

Peak RSS is the kernel's high-water mark of this process's own memory (`VmHWM` in
/proc/self/status), not `ru_maxrss`: Linux carries a process's `ru_maxrss` over from the process
that started it (the benchmark, holding the whole generated world), which hid every figure under
that parent's size.
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
