"""Batch syncs on the large data set at 50 ms per API call, against the minimum calls the data
needs and side by side with the per-item baseline, in ONE run (issue 8).

Design notes: docs/design/benchmarks.md
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    CREDLY_PAGE,
    DOCEBO_LIMIT_PER_HOUR,
    DOCEBO_PAGE,
    ISSUE_BATCH,
    SandboxProcess,
    chunked_pages,
    emit,
    machine,
    machine_line,
    pages,
    plan_for,
    prepare_store,
    product_clients,
    run_product_flow,
    table,
)

F7, F6 = "docebo-to-credly", "credly-to-docebo"
HELD = ("pending", "accepted")


# -- what the data needs ---------------------------------------------------------------------------


def census(data, plan) -> dict:
    """Sizes of every list the batches must read, from the data itself (the same world the
    sandbox serves: `DoceboState` derives learning-plan completion exactly as the sandbox does)."""
    from services.sandbox.docebo.state import DoceboState

    dstate = DoceboState.from_demo(data)
    completed = [e for e in data.enrollments if e["status"] == "completed"]
    completed_by_course = Counter(e["course_id"] for e in completed)
    lp_ids = sorted(int(lp) for lp, _ in plan.lp_mappings)
    lp_courses = {lp["learning_plan_id"]: lp["course_ids"] for lp in data.learning_plans}
    relevant = sorted(set(plan.course_templates) | {c for lp in lp_ids for c in lp_courses[lp]})
    # every enrollment of the mapped plans: no public source documents a server-side status
    # filter for plan enrollments, so the completed ones are picked out of all of them
    lp_enrolled = Counter(r["learning_plan_id"] for r in dstate.iter_lp_enrollments(lp_ids, None, None))
    code_to_cert = {str(c["code"]): c["id_cert"] for c in data.certifications}
    # both batches read the awards of every mapped certification (F4 and F5 both apply to them)
    codes = [code for code, _ in plan.cert_mappings_f7] + [code for code, _ in plan.cert_mappings_f6]
    cert_ids = sorted(code_to_cert[c] for c in codes)
    awards_by_cert = Counter(a["id_cert"] for a in data.awards)
    # learners F7 involves: completions of relevant courses, awards of mapped certifications
    f7_learners = {e["user_id"] for e in completed if e["course_id"] in set(relevant)}
    f7_learners |= {a["user_id"] for a in data.awards if a["id_cert"] in set(cert_ids)}
    # held badges of the candidate templates (F3c)
    cand = plan.dropdown_template_ids | {t["id"] for _, t in plan.lp_mappings} | \
        {t["id"] for _, t in plan.cert_mappings_f7} | {t["id"] for _, t in plan.cert_mappings_f6}
    held_by_t = Counter(b["badge_template_id"] for b in data.badges if b["state"] in HELD)
    emails = {u["email"].lower(): u["user_id"] for u in data.users}
    f7_cert_holders = {a["user_id"] for a in data.awards if a["id_cert"] in {code_to_cert[c] for c, _ in plan.cert_mappings_f7}}
    f6_learners = {emails[b["recipient_email"].lower()] for b in data.badges
                   if b["badge_template_id"] in plan.f6_template_ids and b["recipient_email"].lower() in emails}
    f6_learners |= f7_cert_holders  # F7 issues them badges of the F7 certification templates
    return {
        "users": len(data.users),
        "courses": len(data.courses),
        "relevant_courses": len(relevant),
        "relevant_completions": sum(completed_by_course[c] for c in relevant),
        "all_completions": len(completed),
        "lp_course_pages": sum(pages(len(lp_courses[lp]), DOCEBO_PAGE) for lp in lp_ids),
        "lp_enrollment_pages": chunked_pages(lp_enrolled, lp_ids),
        "enrollment_pages": min(chunked_pages(completed_by_course, relevant), pages(len(completed), DOCEBO_PAGE)),
        "cert_pages": pages(len(data.certifications), DOCEBO_PAGE),
        "award_pages": chunked_pages(awards_by_cert, cert_ids),
        "f7_awards": sum(awards_by_cert[c] for c in cert_ids),
        "f7_learners": len(f7_learners),
        "f7_held_pages": min(sum(pages(held_by_t[t], CREDLY_PAGE) for t in cand),
                             pages(sum(held_by_t.values()), CREDLY_PAGE)),
        "f6_templates": len(plan.f6_template_ids),
        "f6_learners": len(f6_learners),
        "trainings": len(getattr(dstate, "external_trainings", {}) or {}),
    }


def minimum_f7(c: dict, counts: dict) -> dict[str, int]:
    docebo = (1 + pages(c["courses"], DOCEBO_PAGE) + c["lp_course_pages"] + c["lp_enrollment_pages"]
              + c["enrollment_pages"] + c["cert_pages"] + c["award_pages"]
              + min(c["f7_learners"], pages(c["users"], DOCEBO_PAGE)))
    credly = (c["f7_held_pages"] + math.ceil(counts.get("issued", 0) / ISSUE_BATCH)
              + counts.get("replaced", 0) + counts.get("revoked", 0))
    return {"credly": credly, "docebo": docebo}


def minimum_f6(c: dict, counts: dict, badges_count: dict[str, int], f6_templates: set[str]) -> dict[str, int]:
    """`badges_count`: every template's badges (all states) when F6 starts, from Credly's
    template listing (read before the run; those calls are not counted)."""
    credly = min(sum(pages(badges_count.get(t, 0), CREDLY_PAGE) for t in f6_templates),
                 pages(sum(badges_count.values()), CREDLY_PAGE))
    docebo = (1 + min(c["f6_learners"], pages(c["users"], DOCEBO_PAGE)) + c["cert_pages"] + c["award_pages"]
              + pages(c["trainings"], DOCEBO_PAGE)
              + sum(counts.get(k, 0) for k in ("created", "updated", "deleted", "revoked")))
    return {"credly": credly, "docebo": docebo}


def total(calls: dict[str, int]) -> int:
    return sum(calls.values())


# -- the runs --------------------------------------------------------------------------------------


async def template_badge_counts(info: dict) -> dict[str, int]:
    """Credly's `badges_count` of every template (the census of F6's badge reads)."""
    async with product_clients(info) as (credly, _):
        return {str(t["id"]).lower(): int(t.get("badges_count") or 0) async for t in credly.iter_templates()}


RERUNS = (
    # (key, label, clock advance before the pair, full)
    ("incremental_1", "incremental, after the other direction's writes", 600, False),
    ("incremental_2", "incremental, nothing changed", 600, False),
    ("full_again", "full (--full), nothing to do", 0, True),
)


def product_runs(sb: SandboxProcess, db: Path, trace: bool) -> dict:
    """F7 then F6 (the first runs are full), then each re-run pair of RERUNS: the sandboxes'
    clocks move forward 10 minutes before an incremental pair, as two scheduler periods would."""
    out: dict = {}

    def one(key: str, flow: str, full: bool = False, tracing: bool = False) -> None:
        sb.reset_calls()
        r = run_product_flow(flow, db, sb.info, tracemalloc=tracing, full=full)
        r["sandbox_calls"] = {s: sb.calls(s) for s in ("credly", "docebo")}
        if r["status"] != "succeeded" or r["counts"].get("failed"):
            raise SystemExit(f"product {flow} ended {r['status']} ({r['reason']}), counts {r['counts']}")
        print(f"  product {flow:17} {r['mode'] or '':12} {r['wall_s']:7.1f} s  calls "
              f"{total(_svc_totals(r['sandbox_calls']))}", file=sys.stderr)
        out[key] = r

    one("f7", F7, tracing=trace)
    out["badges_count_at_f6"] = asyncio.run(template_badge_counts(sb.info))
    one("f6", F6, tracing=trace)
    for key, _, advance, full in RERUNS:
        if advance:
            sb.advance_clocks(advance)
        one(f"f7_{key}", F7, full=full)
        one(f"f6_{key}", F6, full=full)
    return out


def _svc_totals(per_route: dict[str, dict[str, int]]) -> dict[str, int]:
    return {s: sum(v.values()) for s, v in per_route.items()}


async def baseline_runs(sb: SandboxProcess, db: Path, every: int) -> dict:
    from baseline_per_item import baseline_f6, baseline_f7

    from services.store.db import Store

    out = {}
    with Store(db) as store:
        async with product_clients(sb.info) as (credly, docebo):
            sb.reset_calls()
            t = time.perf_counter()
            out["f7"] = await baseline_f7(store, credly, docebo, sample_every=every)
            out["f7_wall"] = time.perf_counter() - t
            out["f7_sandbox"] = _svc_totals({s: sb.calls(s) for s in ("credly", "docebo")})
            print(f"  baseline {F7} sample {out['f7_wall']:7.1f} s", file=sys.stderr)
            sb.reset_calls()
            t = time.perf_counter()
            out["f6"] = await baseline_f6(store, credly, docebo, sample_every=every)
            out["f6_wall"] = time.perf_counter() - t
            out["f6_sandbox"] = _svc_totals({s: sb.calls(s) for s in ("credly", "docebo")})
            print(f"  baseline {F6} sample {out['f6_wall']:7.1f} s", file=sys.stderr)
    return out


def extrapolate(parts: dict, full_units: dict[str, int]) -> dict:
    """Linear per unit: a part read in full counts as measured; a sampled part is scaled by
    (units in the whole data set) / (units processed)."""
    seconds = 0.0
    calls: Counter = Counter()
    detail = {}
    for name, part in parts.items():
        scale = 1.0
        population = part.population if part.population is not None else full_units.get(name)
        if population is not None:
            scale = population / part.units if part.units else 0.0
        seconds += part.seconds * scale
        for s, n in part.calls.items():
            calls[s] += n * scale
        detail[name] = {"measured_s": round(part.seconds, 2), "units": part.units, "population": population,
                        "scale": round(scale, 2),
                        "calls": dict(part.calls)}
    return {"seconds": seconds, "calls": {s: round(n) for s, n in calls.items()}, "parts": detail}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="large", choices=["small", "medium", "large"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--sample-every", type=int, default=25, help="baseline: every k-th course / award / badge")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="also trace Python allocations in the first F7/F6 runs (slower: wall times not comparable)")
    args = parser.parse_args()

    from services.sandbox.demo_data import generate

    started = time.perf_counter()
    data = generate(args.size, args.seed)
    plan = plan_for(data)
    c = census(data, plan)
    del data
    latency = args.latency_ms / 1000
    tmp = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    with SandboxProcess(size=args.size, seed=args.seed, latency_ms=args.latency_ms) as sb:
        print(f"sandbox process ready in {sb.ready_s:.1f} s ({sb.rss_mib():.0f} MiB resident)", file=sys.stderr)
        asyncio.run(prepare_store(tmp / "product.db", sb, plan))
        prod = product_runs(sb, tmp / "product.db", args.tracemalloc)
        base = None
        if not args.no_baseline:
            sb.reset_state()
            asyncio.run(prepare_store(tmp / "baseline.db", sb, plan))
            base = asyncio.run(baseline_runs(sb, tmp / "baseline.db", args.sample_every))
        sandbox_rss = sb.rss_mib()

    conc = prod["f7"]["concurrency"]["credly"]
    f7c = prod["f7"]["counts"]
    f6c = prod["f6"]["counts"]
    mins = {
        "f7": minimum_f7(c, f7c),
        "f6": minimum_f6(c, f6c, prod["badges_count_at_f6"], {t.lower() for t in plan.f6_template_ids}),
    }
    rows = []
    result: dict = {"benchmark": "batch", "machine": machine(), "size": args.size, "seed": args.seed,
                    "latency_ms": args.latency_ms, "concurrency": conc, "docebo_client_limiter": prod["f7"]["docebo_limiter"],
                    "census": c, "flows": {}}
    for key, flow in (("f7", F7), ("f6", F6)):
        p = prod[key]
        client = {s: total(v) for s, v in p["calls"].items()}
        sandbox = _svc_totals(p["sandbox_calls"])
        m = mins[key]
        lower = total(m) * latency / conc
        entry = {
            "mode": p["mode"],
            "why": p.get("first_log_line", ""),
            "wall_s": round(p["wall_s"], 2),
            "counts": {k: v for k, v in p["counts"].items() if v},
            "calls_client": client,
            "calls_sandbox": sandbox,
            "calls_per_route": p["calls"],
            "minimum_calls": m,
            "calls_vs_minimum": round(total(sandbox) / total(m), 3),
            "calls_vs_minimum_per_service": {s: round(sandbox[s] / m[s], 3) if m[s] else None for s in m},
            "lower_bound_s": round(lower, 2),
            "wall_vs_lower_bound": round(p["wall_s"] / lower, 2),
            "peak_rss_mib": round(p["peak_rss_mib"], 1),
            "rss_before_run_mib": round(p["rss_before_mib"], 1),
            "tracemalloc_peak_mib": round(p["tracemalloc_peak_mib"], 1) if p["tracemalloc_peak_mib"] else None,
            "docebo_hours_at_1000_per_hour": round(sandbox["docebo"] / DOCEBO_LIMIT_PER_HOUR, 2),
        }
        entry["reruns"] = {}
        for rkey, label, advance, _ in RERUNS:
            again = prod[f"{key}_{rkey}"]
            entry["reruns"][rkey] = {"label": label, "mode": again["mode"], "why": again.get("first_log_line", ""),
                                     "clock_advanced_s": advance,
                                     "wall_s": round(again["wall_s"], 2),
                                     "calls_sandbox": _svc_totals(again["sandbox_calls"]),
                                     "calls_per_route": again["calls"],
                                     "counts": {k: v for k, v in again["counts"].items() if v},
                                     "peak_rss_mib": round(again["peak_rss_mib"], 1)}
        if base is not None:
            if key == "f7":
                units = {"completion": c["relevant_completions"]}  # the others: the lists the baseline read
            else:
                units = {}
            est = extrapolate(base[key], units)
            entry["baseline"] = {
                "sample_every": args.sample_every,
                "sample_wall_s": round(base[key + "_wall"], 2),
                "sample_calls_sandbox": base[key + "_sandbox"],
                "estimated_full_s": round(est["seconds"], 1),
                "estimated_full_calls": est["calls"],
                "parts": est["parts"],
                "docebo_hours_at_1000_per_hour": round(est["calls"].get("docebo", 0) / DOCEBO_LIMIT_PER_HOUR, 2),
                "speedup": round(est["seconds"] / p["wall_s"], 1),
                "calls_ratio": round(total(est["calls"]) / total(sandbox), 1),
            }
        result["flows"][flow] = entry
        rows.append(
            [
                f"{flow} (product, {p['mode'] or 'full'})",
                p["wall_s"],
                sandbox["credly"],
                sandbox["docebo"],
                total(sandbox),
                f"{total(m):,} ({entry['calls_vs_minimum']:.2f}x)",
                f"{lower:.1f} ({entry['wall_vs_lower_bound']:.1f}x)",
                f"{p['peak_rss_mib']:.0f}",
                entry["docebo_hours_at_1000_per_hour"],
            ]
        )
        if base is not None:
            b = entry["baseline"]
            rows.append(
                [
                    f"{flow} (per-item baseline, est.)",
                    b["estimated_full_s"],
                    b["estimated_full_calls"].get("credly", 0),
                    b["estimated_full_calls"].get("docebo", 0),
                    total(b["estimated_full_calls"]),
                    "",
                    "",
                    "",
                    b["docebo_hours_at_1000_per_hour"],
                ]
            )
        for rkey, label, _, _ in RERUNS:
            rr = entry["reruns"][rkey]
            rows.append(
                [
                    f"{flow} ({label})",
                    rr["wall_s"],
                    rr["calls_sandbox"]["credly"],
                    rr["calls_sandbox"]["docebo"],
                    total(rr["calls_sandbox"]),
                    "",
                    "",
                    f"{rr['peak_rss_mib']:.0f}",
                    round(rr["calls_sandbox"]["docebo"] / DOCEBO_LIMIT_PER_HOUR, 3),
                ]
            )
    f7e, f6e = result["flows"][F7], result["flows"][F6]
    result["targets"] = {
        "calls_within_1_2x_minimum": {F7: f7e["calls_vs_minimum"] <= 1.2, F6: f6e["calls_vs_minimum"] <= 1.2},
        "ten_times_faster_than_baseline": {f: e["baseline"]["speedup"] >= 10 for f, e in result["flows"].items()}
        if base
        else None,
        "incremental_nothing_changed_calls": {
            f: total(e["reruns"]["incremental_2"]["calls_sandbox"]) for f, e in result["flows"].items()
        },
    }
    result["sandbox_rss_mib"] = round(sandbox_rss, 0)
    result["bench_wall_s"] = round(time.perf_counter() - started, 1)

    print(
        f"machine: {machine_line()}; sandboxes in a separate process, {args.latency_ms:g} ms per call; "
        f"size {args.size} (seed {args.seed}); product concurrency {conc}; Docebo client limiter: "
        f"{prod['f7']['docebo_limiter']} (switched off for this benchmark)"
    )
    print(
        f"data: {c['courses']:,} courses ({c['relevant_courses']:,} relevant), {c['relevant_completions']:,} completions of "
        f"relevant courses, {c['f7_awards']:,} awards of mapped certifications, {c['f6_templates']} templates "
        f"with a Docebo side (F6); F7 counts {f7e['counts']}; F6 counts {f6e['counts']}"
    )
    print(
        table(
            rows,
            [
                "run",
                "wall s",
                "Credly calls",
                "Docebo calls",
                "calls",
                "minimum (ratio)",
                "lower bound s (ratio)",
                "peak RSS MiB",
                "h at 1,000/h",
            ],
        )
    )
    if base is not None:
        print(
            f"per-item baseline: every {args.sample_every}th course/award/badge measured (lists read in full), "
            f"extrapolated linearly per unit; speed-up F7 {f7e['baseline']['speedup']}x, F6 {f6e['baseline']['speedup']}x"
        )
    emit(result)


if __name__ == "__main__":
    main()
