"""`explain` for one learner against both sandboxes served over loopback with 50 ms latency per
call (issue 13: answers in under 1 s, at most 10 calls). Prints a table and ONE JSON line.

Run: .venv/bin/python benchmarks/bench_explain.py [--latency-ms 50] [--learners 5]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import emit, machine_line, table  # noqa: E402
from services.clients.credly import CredlyClient  # noqa: E402
from services.clients.docebo import DoceboClient  # noqa: E402
from services.demo import DEMO_SETTINGS  # noqa: E402
from services.flows import FlowContext, run_flow  # noqa: E402
from services.flows.explain import explain_learner  # noqa: E402
from services.sandbox.demo_data import generate  # noqa: E402
from services.sandbox.runner import SandboxOptions, run_sandboxes  # noqa: E402
from services.store import settings as settings_store  # noqa: E402
from services.store.db import Store  # noqa: E402
from services.store.mappings import MappingInput, add_mapping  # noqa: E402


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--learners", type=int, default=5)
    args = parser.parse_args()
    logging.getLogger("services").setLevel(logging.ERROR)
    data = generate("small", 0)
    async with run_sandboxes(SandboxOptions(data=data)) as sb:
        with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "bench.db") as store:
            settings_store.set_settings(store, dict(DEMO_SETTINGS))
            credly = CredlyClient(sb.credly.base_url, sb.credly.organization_id, sb.credly.token)
            docebo = DoceboClient(sb.docebo.base_url, sb.docebo.client_id, sb.docebo.client_secret)
            ctx = FlowContext(store, credly, docebo)
            for flow in ("templates", "dropdown"):
                await run_flow(flow, ctx)
            templates = [r["template_id"] for r in store.db.query("SELECT template_id FROM badge_templates WHERE is_active = 1")]
            field_id = int(store.get_meta("docebo.course_field_id"))
            names = {r["template_id"]: r["name"] for r in store.db.query("SELECT template_id, name FROM badge_templates")}
            for i, course in enumerate(data.courses[::3]):
                sb.docebo.state.set_course_value(course["id_course"], field_id, label=names[templates[i % len(templates)]])
            for i, lp in enumerate(data.learning_plans[:3]):
                add_mapping(store, MappingInput(template_id=templates[i], learning_plan_id=str(lp["learning_plan_id"])))
            for i, cert in enumerate(data.certifications[:2]):
                add_mapping(store, MappingInput(template_id=templates[-1 - i], certification_code=cert["code"],
                                                import_as_external_training=True))
            await run_flow("docebo-to-credly", ctx, full=True)  # the daily full run (its plan is kept)
            for app in (sb.credly.app, sb.docebo.app):
                app.state.sandbox.faults.update(latency_ms=args.latency_ms)
            busy = sorted({e["user_id"] for e in data.enrollments if e.get("status") == "completed"})[: args.learners]
            rows, seconds, calls = [], [], []
            for uid in busy:
                email = next(u["email"] for u in data.users if u["user_id"] == uid)
                before = credly.calls.total() + docebo.calls.total()
                t0 = time.perf_counter()
                ex = await explain_learner(ctx, email)
                took = time.perf_counter() - t0
                made = credly.calls.total() + docebo.calls.total() - before
                seconds.append(took)
                calls.append(made)
                rows.append((email, len(ex.templates), made, f"{took:.3f}"))
            await credly.aclose()
            await docebo.aclose()
    print(machine_line())
    print(table(rows, ["learner", "templates", "API calls", "seconds"]))
    emit({"bench": "explain", "latency_ms": args.latency_ms, "learners": len(rows), "max_calls": max(calls),
          "median_s": round(statistics.median(seconds), 3), "max_s": round(max(seconds), 3)})


if __name__ == "__main__":
    asyncio.run(main())
