"""Measure the sandboxes on a demo world: generation time, memory, and Credly list calls.

    .venv/bin/python benchmarks/bench_sandboxes.py [--size large] [--seed 0]

Prints figures; asserts nothing (timing goals live here, not in tests). Memory is the process's
resident set size (psutil) before and after building the data and the two sandbox states, and
Python's own allocations (tracemalloc) for the built states.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
import tracemalloc
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.sandbox.credly.app import create_credly_app  # noqa: E402
from services.sandbox.credly.state import CredlyState  # noqa: E402
from services.sandbox.demo_data import generate  # noqa: E402


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


async def page_through(client: httpx.AsyncClient, url: str, params: dict | None) -> tuple[int, int]:
    items = pages = 0
    next_url: str | None = url
    while next_url:
        r = await client.get(next_url, params=params)
        params = None
        r.raise_for_status()
        body = r.json()
        items += len(body["data"])
        pages += 1
        next_url = body["metadata"]["next_page_url"]
    return items, pages


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="large", choices=["small", "medium", "large"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    proc = psutil.Process()
    gc.collect()
    rss0 = proc.memory_info().rss

    started = time.perf_counter()
    data = generate(args.size, args.seed)
    gen_s = time.perf_counter() - started
    gc.collect()
    rss_data = proc.memory_info().rss
    print(f"generate({args.size!r}, {args.seed}): {gen_s:.1f} s; {len(data.templates)} templates, "
          f"{len(data.badges)} badges, {len(data.users)} users, {len(data.enrollments)} enrollments")
    print(f"  RSS after generating: +{mib(rss_data - rss0)}")

    tracemalloc.start()
    started = time.perf_counter()
    credly_state = CredlyState.from_demo(data)
    credly_s = time.perf_counter() - started
    credly_bytes = tracemalloc.get_traced_memory()[0]
    docebo_bytes = None
    try:
        from services.sandbox.docebo.state import DoceboState

        before = tracemalloc.get_traced_memory()[0]
        started = time.perf_counter()
        docebo_state = DoceboState.from_demo(data)
        docebo_s = time.perf_counter() - started
        docebo_bytes = tracemalloc.get_traced_memory()[0] - before
    except ModuleNotFoundError:
        docebo_state = None
    tracemalloc.stop()
    gc.collect()
    rss_states = proc.memory_info().rss
    print(f"CredlyState.from_demo: {credly_s:.2f} s, {mib(credly_bytes)} allocated")
    if docebo_state is not None:
        print(f"DoceboState.from_demo: {docebo_s:.2f} s, {mib(docebo_bytes)} allocated")
    print(f"  RSS after both states: +{mib(rss_states - rss0)} over the start "
          f"(total {mib(rss_states)})")

    app = create_credly_app(credly_state)
    org = credly_state.organization_id
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://credly/v1",
                                 auth=(credly_state.token, "")) as client:
        for label, path, params in [
            ("all templates", f"/organizations/{org}/badge_templates", {"sort": "name"}),
            ("all badges", f"/organizations/{org}/badges", None),
            ("badges sorted -issued_at", f"/organizations/{org}/badges", {"sort": "-issued_at"}),
            ("pending+accepted badges", f"/organizations/{org}/badges", {"filter": "state::pending,accepted"}),
        ]:
            started = time.perf_counter()
            items, pages = await page_through(client, path, params)
            took = time.perf_counter() - started
            print(f"{label}: {items} items in {pages} pages, {took:.2f} s ({took / pages * 1000:.1f} ms a page)")
        template = next(iter(credly_state.templates))
        email = next(iter(credly_state.badges.values())).recipient_email
        for label, flt in [("one template's badges", f"badge_template_id::{template}"),
                           ("one recipient's badges", f"recipient_email::{email}")]:
            started = time.perf_counter()
            for _ in range(100):
                r = await client.get(f"/organizations/{org}/badges", params={"filter": flt})
                r.raise_for_status()
            print(f"{label}: {(time.perf_counter() - started) * 10:.1f} ms a call (100 calls)")
    print(f"RSS at the end: {mib(proc.memory_info().rss)}")


if __name__ == "__main__":
    asyncio.run(main())
