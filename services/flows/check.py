"""M3 — check every mapping against the live systems, on demand.

Reads, once each and only when a mapping needs it: every Credly template (all pages), every
Docebo learning plan, every Docebo certification. Each mapping is then flagged on its row
(`record_check`): `broken` with the reasons (an unknown template id, learning plan id or
certification code), or `ok`. Nothing else is changed (a broken mapping stays active; the admin
decides). Decision: a template archived in Credly is reported in the message of an `ok` row
(its badges still import to Docebo, but F3/F4 cannot issue it).
"""

from __future__ import annotations

from typing import Any

from services.flows.base import FlowContext, FlowFailed
from services.store.mappings import record_check


async def check_mappings(ctx: FlowContext) -> list[dict[str, Any]]:
    """Check every mapping; returns `[{id, template_id, status, message}]` in id order."""
    store = ctx.store
    rows = [dict(r) for r in store.db.query("SELECT * FROM mappings ORDER BY id")]
    if not rows:
        return []
    if ctx.credly is None or ctx.docebo is None:
        raise FlowFailed("checking mappings needs both the Credly and the Docebo connection")
    templates: dict[str, dict[str, Any]] = {}
    async for t in ctx.credly.iter_templates():
        templates[str(t.get("id", "")).lower()] = t
    plans: set[str] = set()
    if any(r["learning_plan_id"] for r in rows):
        async for lp in ctx.docebo.iter_learning_plans():
            plans.add(str(lp.get("learning_plan_id", lp.get("id_path", lp.get("id", "")))))
    codes: set[str] = set()
    if any(str(r["certification_code"] or "").strip() for r in rows):
        async for c in ctx.docebo.iter_certifications():
            codes.add(str(c.get("code") or "").strip())
    results = []
    for r in rows:
        problems: list[str] = []
        notes: list[str] = []
        tid = str(r["template_id"]).lower()
        template = templates.get(tid)
        if template is None:
            problems.append(f"template {r['template_id']} does not exist in Credly")
        elif template.get("state") != "active":
            notes.append(f"template {template.get('name')!r} is {template.get('state')} in Credly: no new badges can be issued")
        if r["learning_plan_id"] and str(r["learning_plan_id"]) not in plans:
            problems.append(f"learning plan {r['learning_plan_id']} does not exist in Docebo")
        code = str(r["certification_code"] or "").strip()
        if code and code not in codes:
            problems.append(f"certification code {code!r} does not exist in Docebo")
        status = "broken" if problems else "ok"
        message = "; ".join(problems + notes)
        record_check(store, r["id"], status, message)
        results.append({"id": r["id"], "template_id": r["template_id"], "status": status, "message": message})
    return results
