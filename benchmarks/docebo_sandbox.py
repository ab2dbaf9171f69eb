"""Demo data generation time and the Docebo sandbox at scale (issue 3). Prints figures; not a test.

    .venv/bin/python benchmarks/docebo_sandbox.py [--sizes small,medium,large] [--seed 0]

For each size: generation time, the time to load the Docebo half into `DoceboState`, the memory the
loaded state holds (tracemalloc, Python objects only), and in-process latencies (httpx
ASGITransport) of the calls the flows make most: exact user lookup by e-mail, one page of users,
completed enrollments of 50 courses per call, and learning-plan enrollments of one plan.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from services.sandbox.demo_data import generate  # noqa: E402
from services.sandbox.docebo.routes import create_docebo_app  # noqa: E402
from services.sandbox.docebo.state import DoceboState  # noqa: E402


async def latencies(state: DoceboState, data) -> dict[str, float]:
    app = create_docebo_app(state)
    out: dict[str, float] = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as c:
        r = await c.post("/oauth2/token", data={"grant_type": "client_credentials", "client_id": state.client_id,
                                                "client_secret": state.client_secret})
        c.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

        async def timed(name: str, calls) -> None:
            samples = []
            for args in calls:
                t = time.perf_counter()
                resp = await c.get(args[0], params=args[1])
                samples.append(time.perf_counter() - t)
                assert resp.status_code == 200, resp.text
            out[name] = statistics.median(samples) * 1000

        emails = [u["email"] for u in data.users[:: max(1, len(data.users) // 50)]]
        await timed(
            "user by e-mail (match_type=full)", [("/manage/v1/user", {"search_text": e, "match_type": "full"}) for e in emails]
        )
        await timed("users page 200 (page 3)", [("/manage/v1/user", {"page": 3, "page_size": 200})] * 10)
        course_ids = [c["id_course"] for c in data.courses]
        chunks = [course_ids[i : i + 50] for i in range(0, min(len(course_ids), 500), 50)]
        await timed(
            "completed enrollments, 50 course ids",
            [
                ("/course/v1/courses/enrollments", [*(("course_id[]", x) for x in ch), ("enrollment_status[]", "completed")])
                for ch in chunks
            ],
        )
        lp_ids = [lp["learning_plan_id"] for lp in data.learning_plans[:20]]
        await timed(
            "LP enrollments of one plan",
            [
                (
                    "/learningplan/v1/learningplans/enrollments",
                    [("learning_plan_id[]", lp), ("extra_fields[]", "enrollment_status")],
                )
                for lp in lp_ids
            ],
        )
        await timed("all enrollments, page 100", [("/course/v1/courses/enrollments", {"page": 100})] * 5)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="small,medium,large")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for size in args.sizes.split(","):
        gc.collect()
        t = time.perf_counter()
        data = generate(size, args.seed)  # type: ignore[arg-type]
        gen_s = time.perf_counter() - t
        completed = sum(1 for e in data.enrollments if e["status"] == "completed")
        print(
            f"[{size}] generate: {gen_s:.2f} s  users={len(data.users):,} courses={len(data.courses):,} "
            f"learning_plans={len(data.learning_plans):,} enrollments={len(data.enrollments):,} "
            f"completed={completed:,} awards={len(data.awards):,} templates={len(data.templates):,} "
            f"badges={len(data.badges):,}"
        )
        gc.collect()
        tracemalloc.start()
        t = time.perf_counter()
        state = DoceboState.from_demo(data)
        load_s = time.perf_counter() - t
        held, _peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"[{size}] DoceboState.from_demo: {load_s:.2f} s, holds {held / 2**20:.1f} MiB")
        for name, ms in asyncio.run(latencies(state, data)).items():
            print(f"[{size}]   {name}: {ms:.2f} ms (median)")


if __name__ == "__main__":
    main()
