"""Measure the API clients against both sandboxes served by uvicorn on loopback.

Design notes: docs/design/benchmarks.md
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.clients.credly import CredlyClient, Issued  # noqa: E402
from services.clients.docebo import DoceboClient  # noqa: E402
from services.clients.http import HttpPolicy, bounded_gather  # noqa: E402
from services.sandbox.credly.app import create_credly_app  # noqa: E402
from services.sandbox.credly.state import CredlyState  # noqa: E402
from services.sandbox.demo_data import generate  # noqa: E402
from services.sandbox.docebo.app import create_docebo_app  # noqa: E402
from services.sandbox.docebo.state import DoceboState  # noqa: E402
from services.sandbox.faults import FaultConfig  # noqa: E402
from services.sandbox.runner import serve_app  # noqa: E402


def show_calls(name: str, client) -> None:
    retries = client.calls.retries()
    for route, n in client.calls.snapshot().items():
        extra = f"  ({retries[route]} retries)" if route in retries else ""
        print(f"  {name:7} {route:55} {n:6}{extra}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="medium", choices=["small", "medium", "large"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--drop-rate", type=float, default=0.0)
    parser.add_argument("--issue", type=int, default=200)
    args = parser.parse_args()
    logging.getLogger("services").setLevel(logging.ERROR)  # retries are expected here

    data = generate(args.size, args.seed)
    faults = dict(fail_rate=args.fail_rate, drop_rate=args.drop_rate)
    cstate = CredlyState.from_demo(data)
    dstate = DoceboState.from_demo(data)
    capp = create_credly_app(cstate, FaultConfig(seed=1, **faults))
    dapp = create_docebo_app(dstate, FaultConfig(seed=2, **faults))
    policy = HttpPolicy(time_scale=0.01)  # retry sleeps scaled down: we measure the clients

    async with serve_app(capp) as cs, serve_app(dapp) as ds:
        async with CredlyClient(f"{cs.origin}/v1", cstate.organization_id, cstate.token,
                                policy=policy) as credly, \
                DoceboClient(ds.origin, dstate.client_id, dstate.client_secret,
                             policy=policy) as docebo:
            t0 = time.perf_counter()
            templates = [t async for t in credly.iter_templates()]
            badges = [b async for b in credly.iter_badges()]
            t1 = time.perf_counter()
            users = [u async for u in docebo.iter_users()]
            completed = [e async for e in docebo.iter_enrollments(
                course_ids=sorted(dstate.courses), statuses=["completed"])]
            t2 = time.perf_counter()
            tpl = next(t for t in cstate.templates.values()
                       if t.state == "active" and t.allow_duplicate_badges)
            results = await bounded_gather(credly.concurrency, [
                credly.issue_badge({
                    "recipient_email": f"bench{i}@example.org", "badge_template_id": tpl.id,
                    "issued_to_first_name": "Bench", "issued_to_last_name": str(i),
                    "issued_at": "2026-06-01 09:00:00 +0000", "expires_at": False})
                for i in range(args.issue)])
            t3 = time.perf_counter()

    once = all(
        sum(1 for b in cstate.badges.values()
            if b.template_id == tpl.id and b.recipient_email == f"bench{i}@example.org") == 1
        for i in range(args.issue))
    recovered = sum(1 for r in results if isinstance(r, Issued) and r.recovered)
    print(f"size {args.size}, fail rate {args.fail_rate:.0%}, drop rate {args.drop_rate:.0%}")
    print(f"Credly: {len(templates)} templates + {len(badges)} badges read in {t1 - t0:.2f} s")
    print(f"Docebo: {len(users)} users + {len(completed)} completed enrollments in {t2 - t1:.2f} s")
    print(f"Credly: {args.issue} badges issued in {t3 - t2:.2f} s; {recovered} recovered after "
          f"an ambiguous failure; every badge exactly once: {once}")
    print("calls per route:")
    show_calls("Credly", credly)
    show_calls("Docebo", docebo)
    n = docebo.calls.total()
    print(f"Docebo calls: {n}; at 1,000 calls/hour (burst 20) these would take "
          f"{max(0, n - 20) * 3.6 / 60:.1f} min")


if __name__ == "__main__":
    asyncio.run(main())
