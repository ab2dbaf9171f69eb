"""Measure the webhook receiver of `serve` under load from a second process on loopback (issue 8).

Design notes: docs/design/benchmarks.md
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SECRET = "bench-secret_0123456789abcdef"


# -- the load generator (runs in the second process) ----------------------------------------------


async def _load(url: str, n: int, concurrency: int, duplicates: float, rate: float = 0.0, prefix: str = "wh-bench") -> dict:
    """Post the deliveries over ``concurrency`` keep-alive connections. A minimal HTTP/1.1 client
    on asyncio streams (one request per connection at a time), so the figures measure the
    receiver rather than a client library's own per-request overhead."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    bodies = [
        {
            "message_id": f"{prefix}-{i:08d}",
            "event": "course.enrollment.completed",
            "webhook_id": 1,
            "payload": {"user_id": 1 + i % 500, "course_id": 100 + i % 37, "status": "completed"},
        }
        for i in range(n)
    ]
    step = int(1 / duplicates) if duplicates > 0 else 0
    sends = bodies + ([bodies[i] for i in range(0, n, step)] if step else [])
    latencies: list[float] = []
    statuses: collections.Counter[int] = collections.Counter()
    stored = 0
    queue: asyncio.Queue = asyncio.Queue()
    for body in sends:
        content = json.dumps(body).encode()  # noqa: E501
        head = (
            f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(content)}\r\n\r\n"
        ).encode()
        queue.put_nowait(head + content)

    sequence = iter(range(len(sends)))
    loop = asyncio.get_running_loop()
    begin = 0.0

    async def worker() -> None:
        nonlocal stored
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while True:
                try:
                    request = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                if rate > 0:  # open loop: the k-th request goes out at begin + k / rate
                    due = begin + next(sequence) / rate
                    wait = due - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                t0 = time.perf_counter()
                writer.write(request)
                status_line = await reader.readline()
                length = 0
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b""):
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                payload = await reader.readexactly(length)
                latencies.append(time.perf_counter() - t0)
                status = int(status_line.split()[1])
                statuses[status] += 1
                if status == 200:
                    stored += json.loads(payload)["stored"]
        finally:
            writer.close()

    started = time.perf_counter()
    begin = loop.time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "sent": len(sends),
        "distinct": n,
        "wall_s": wall,
        "acks_per_s": statuses[200] / wall,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": latencies[-1] * 1000,
        "statuses": dict(statuses),
        "stored_reported": stored,
    }


# -- the server side (this process) ---------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duplicates", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--synchronous",
        choices=["NORMAL", "FULL"],
        default="FULL",
        help=(
            "SQLite synchronous mode of the inbox writer (serve uses FULL, which survives a power cut; NORMAL only a killed "
            "process)"
        ),
    )
    parser.add_argument(
        "--rate", type=float, default=500.0, help="offered load of the first phase, deliveries per second (latency at that rate)"
    )
    parser.add_argument(
        "--client", nargs=6, metavar=("URL", "N", "CONCURRENCY", "DUPLICATES", "RATE", "PREFIX"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.client:
        url, n, c, d, rate, prefix = args.client
        print(json.dumps(asyncio.run(_load(url, int(n), int(c), float(d), float(rate), prefix))))
        return

    import logging

    logging.basicConfig(level=logging.WARNING)
    from services.core.config import AppConfig
    from services.core.secrets import MemorySecrets
    from services.serve.inbox_worker import Outcome
    from services.serve.receiver import ReceiverSettings
    from services.serve.service import ServeOptions, ServeRuntime
    from services.store import inbox
    from services.store.db import Store

    processed: collections.Counter[str] = collections.Counter()

    async def record(ctx, row):
        processed[row["delivery_key"]] += 1
        return Outcome("done")

    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "bench.db"
        config = AppConfig()
        options = ServeOptions(
            port=0,
            scheduler=False,
            mail=False,
            workers=args.workers,
            poll_s=0.2,
            handlers={"course_completion": record},
            clients=lambda: (None, None),
            receiver=ReceiverSettings(secret=SECRET),
            synchronous=args.synchronous,
        )
        with ServeRuntime(config, MemorySecrets(), db_path, options) as rt:

            def phase(rate: float, prefix: str) -> dict:
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--client",
                        rt.urls["docebo"],
                        str(args.deliveries),
                        str(args.concurrency),
                        str(args.duplicates),
                        str(rate),
                        prefix,
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                return json.loads(out.stdout.strip().splitlines()[-1])

            paced = phase(args.rate, "wh-paced")  # latency at the offered rate (open loop)
            flat_out = phase(0.0, "wh-flat")  # as fast as the connections go (saturation)
            t0 = time.perf_counter()
            deadline = t0 + 300
            while time.perf_counter() < deadline:
                with Store(db_path) as store:
                    counts = inbox.counts(store)
                if counts["backlog"] == 0:
                    break
                time.sleep(0.1)
            drain_s = time.perf_counter() - t0
            batches, stored = rt.writer.batches, rt.writer.stored
        with Store(db_path) as store:
            rows = store.conn.execute("SELECT COUNT(*) FROM inbox").fetchone()[0]
            done = store.conn.execute("SELECT COUNT(*) FROM inbox WHERE status = 'done'").fetchone()[0]
    distinct = 2 * args.deliveries
    exactly_once = len(processed) == distinct and all(v == 1 for v in processed.values())
    nothing_lost = rows == distinct and done == distinct
    r2 = lambda d: {k: round(v, 2) if isinstance(v, float) else v for k, v in d.items()}  # noqa: E731
    result = {
        "benchmark": "receiver",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "synchronous": args.synchronous,
        "concurrency": args.concurrency,
        "paced": r2(paced),
        "saturation": r2(flat_out),
        "rows_stored": rows,
        "rows_done": done,
        "commits": batches,
        "deliveries_per_commit": round(stored / batches, 1) if batches else 0,
        "drain_after_load_s": round(drain_s, 2),
        "processed_exactly_once": exactly_once,
        "target_met": (
            flat_out["acks_per_s"] >= 500
            and paced["acks_per_s"] >= 0.95 * args.rate
            and paced["p99_ms"] < 50
            and nothing_lost
            and exactly_once
        ),
    }
    print(f"machine                      {result['machine']}")
    print(
        f"connections                  {args.concurrency} keep-alive, from a second process "
        f"(inbox writer synchronous = {args.synchronous})"
    )
    for name, load in (("paced", paced), ("saturation", flat_out)):
        label = f"offered {args.rate:.0f}/s" if name == "paced" else "as fast as possible"
        print(f"{name} ({label})")
        print(
            f"  requests                   {load['sent']} ({load['distinct']} distinct, "
            f"{load['sent'] - load['distinct']} re-sent), statuses {load['statuses']}"
        )
        print(f"  acknowledged per second    {load['acks_per_s']:.0f}")
        print(f"  ack latency p50/p99/max    {load['p50_ms']:.1f} / {load['p99_ms']:.1f} / {load['max_ms']:.1f} ms")
    print(f"rows stored / done           {rows} / {done} (expected {distinct})")
    print(f"commits (group commit)       {batches} ({result['deliveries_per_commit']} items per commit)")
    print(f"processed exactly once       {exactly_once} (backlog drained {drain_s:.2f} s after the load)")
    print(
        f"target met                   {result['target_met']}  (≥ 500/s acknowledged, p99 < 50 ms at "
        f"{args.rate:.0f}/s, nothing lost)"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
