"""Measure the webhook receiver of `serve` under load from a second process on loopback (issue 8).

    .venv/bin/python benchmarks/bench_receiver.py [--deliveries 5000] [--concurrency 32]
                                                  [--duplicates 0.1] [--workers 4] [--rate 0]

`serve` runs in this process (ServeRuntime: receiver on uvicorn, group-commit inbox writer,
workers) against a fresh SQLite file in a temp dir, with a no-op handler table that records
every event it is given. A second process posts `--deliveries` distinct Docebo deliveries
(single `payload`, 500 learners) with `--concurrency` requests in flight, and re-sends a share
`--duplicates` of them. Printed: deliveries acknowledged per second, p50 / p99 / max
acknowledgement latency, what was stored, and whether every stored event was processed exactly
once after the load. Target (issue 8): ≥ 500 deliveries/s, p99 < 50 ms, nothing lost.
Prints figures and a JSON line; asserts nothing.
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


async def _load(url: str, n: int, concurrency: int, duplicates: float, rate: float = 0.0) -> dict:
    """Post the deliveries over ``concurrency`` keep-alive connections. A minimal HTTP/1.1 client
    on asyncio streams (one request per connection at a time), so the figures measure the
    receiver rather than a client library's own per-request overhead. With ``rate`` > 0 the
    requests are sent on a fixed schedule (request i at start + i / rate: an open loop at that
    offered load, the latency then measured at that load) instead of as fast as possible."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    bodies = [
        {
            "message_id": f"wh-bench-{i:08d}",
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
        content = json.dumps(body).encode()
        head = (
            f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(content)}\r\n\r\n"
        ).encode()
        queue.put_nowait((queue.qsize(), head + content))

    async def worker() -> None:
        nonlocal stored
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while True:
                try:
                    index, request = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                if rate > 0:
                    await asyncio.sleep(max(0.0, started + index / rate - time.perf_counter()))
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
    parser.add_argument("--rate", type=float, default=0.0,
                        help="offered load in deliveries/s (open loop); 0 = as fast as the connections go")
    parser.add_argument("--client", nargs=5, metavar=("URL", "N", "CONCURRENCY", "DUPLICATES", "RATE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        url, n, c, d, r = args.client
        print(json.dumps(asyncio.run(_load(url, int(n), int(c), float(d), float(r)))))
        return

    import logging

    logging.basicConfig(level=logging.WARNING)
    from services import inbox
    from services.config import AppConfig
    from services.receiver import ReceiverSettings
    from services.secrets import MemorySecrets
    from services.serve import ServeOptions, ServeRuntime
    from services.store import Store
    from services.worker import Outcome

    processed: collections.Counter[str] = collections.Counter()

    async def record(ctx, row):
        processed[row["delivery_key"]] += 1
        return Outcome("done")

    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "bench.db"
        config = AppConfig()
        options = ServeOptions(port=0, scheduler=False, mail=False, workers=args.workers, poll_s=0.2,
                               handlers={"course_completion": record}, clients=lambda: (None, None),
                               receiver=ReceiverSettings(secret=SECRET))
        with ServeRuntime(config, MemorySecrets(), db_path, options) as rt:
            out = subprocess.run(
                [sys.executable, __file__, "--client", rt.urls["docebo"], str(args.deliveries),
                 str(args.concurrency), str(args.duplicates), str(args.rate)],
                capture_output=True, text=True, check=True,
            )
            load = json.loads(out.stdout.strip().splitlines()[-1])
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
    exactly_once = len(processed) == args.deliveries and all(v == 1 for v in processed.values())
    result = {
        "benchmark": "receiver",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "concurrency": args.concurrency,
        "offered_rate": args.rate or None,
        **{k: round(v, 2) if isinstance(v, float) else v for k, v in load.items()},
        "rows_stored": rows,
        "rows_done": done,
        "commits": batches,
        "deliveries_per_commit": round(stored / batches, 1) if batches else 0,
        "drain_after_load_s": round(drain_s, 2),
        "processed_exactly_once": exactly_once,
        "target_met": load["acks_per_s"] >= 500 and load["p99_ms"] < 50 and rows == args.deliveries and exactly_once,
    }
    print(f"machine                     {result['machine']}")
    print(f"requests sent               {load['sent']} ({load['distinct']} distinct, {load['sent'] - load['distinct']} re-sent)")
    print(f"concurrency                 {args.concurrency}" + (f", offered load {args.rate:g}/s (open loop)" if args.rate else ", as fast as possible"))
    print(f"acknowledged per second     {load['acks_per_s']:.0f}")
    print(f"ack latency p50 / p99 / max {load['p50_ms']:.1f} / {load['p99_ms']:.1f} / {load['max_ms']:.1f} ms")
    print(f"statuses                    {load['statuses']}")
    print(f"rows stored / done          {rows} / {done}")
    print(f"commits (group commit)      {batches} ({result['deliveries_per_commit']} items per commit)")
    print(f"processed exactly once      {exactly_once} (drained {drain_s:.2f} s after the load)")
    print(f"target met                  {result['target_met']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
