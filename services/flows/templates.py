"""F1 — Credly badge templates → the template table T (daily, on demand, per webhook event).

Design notes: docs/design/flows.md
"""

from __future__ import annotations

import json
from typing import Any

from services.flows.base import Job, collect
from services.store import mappings as mappings_service
from services.store import notifications
from services.store.db import Store, utcnow

ORPHAN_OPTIONS_META = "dropdown.orphan_option_ids"


def _rows(store: Store) -> dict[str, dict[str, Any]]:
    return {r["template_id"]: dict(r) for r in store.db.query("SELECT * FROM badge_templates")}


def _desired_active(state: str, row: dict[str, Any] | None) -> int:
    if state != "active":
        return 0
    if row is not None and row["admin_deactivated"]:
        return 0
    return 1


def _label(t: dict[str, Any]) -> str:
    return f"template {t.get('name')!r} ({t.get('id')})"


async def sync_templates(job: Job) -> None:
    """F1 over every template (see module docstring)."""
    job.rec.info("reading every badge template from Credly")
    templates = await collect(job.credly.iter_templates(), job)
    job.rec.info(f"read {len(templates)} templates")
    job.rec.set_total(len(templates))
    apply_templates(job, templates, full=True)
    job.rec.progress(len(templates), len(templates))


def add_orphan_options(store: Store, option_ids: list[str]) -> None:
    """Remember dropdown option ids whose template row is gone, for F2 to remove."""
    if not option_ids:
        return
    current = json.loads(store.get_meta(ORPHAN_OPTIONS_META, "[]") or "[]")
    merged = sorted(set(current) | {str(o) for o in option_ids if str(o)})
    store.set_meta(ORPHAN_OPTIONS_META, json.dumps(merged))


def _delete_rows(job: Job, doomed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Delete template rows (inside the caller's transaction); deactivate their mappings.
    Returns the mappings deactivated."""
    store = job.store
    deactivated: list[dict[str, Any]] = []
    now = utcnow()
    for row in doomed:
        job.rec.count("deleted")
        job.action(
            "delete_template", row["template_id"], f"delete template {row['name']!r} ({row['template_id']}): gone from Credly"
        )
        maps = list(
            store.db.query(
                "SELECT * FROM mappings WHERE lower(template_id) = lower(?) AND is_active = 1 ORDER BY id",
                (row["template_id"],),
            )
        )
        for m in maps:
            job.action(
                "deactivate_mapping",
                f"mapping {m['id']}",
                f"deactivate mapping {m['id']}: its template {row['name']!r} ({row['template_id']}) was deleted in Credly",
            )
        deactivated += maps
        if job.dry_run:
            continue
        store.db.execute("DELETE FROM badge_templates WHERE template_id = ?", (row["template_id"],))
        store.db.execute(
            "UPDATE mappings SET is_active = 0, updated_at = ? WHERE lower(template_id) = lower(?) AND is_active = 1",
            (now, row["template_id"]),
        )
    if not job.dry_run:
        add_orphan_options(store, [r["dropdown_element_id"] for r in doomed if r["dropdown_element_id"]])
    return deactivated


def apply_templates(job: Job, templates: list[dict[str, Any]], *, full: bool) -> None:
    """Apply F1 to `templates` (the whole listing when `full`, else single templates from events)."""
    store = job.store
    rows = _rows(store)
    by_name_row = {r["name"]: tid for tid, r in rows.items()}
    seen: set[str] = set()

    # 1. Unique names: group the non-draft templates by name, in retrieved order.
    groups: dict[str, list[dict[str, Any]]] = {}
    for t in templates:
        job.rec.count("examined")
        tid = str(t.get("id", ""))
        if not tid:
            continue
        seen.add(tid)
        if t.get("state") == "draft":
            job.rec.debug(f"{_label(t)} is a draft: ignored", object=tid)
            continue
        groups.setdefault(str(t.get("name") or ""), []).append(t)

    winners: list[dict[str, Any]] = []
    for name, group in groups.items():
        if not name:
            for t in group:
                job.skip(str(t["id"]), f"template {t['id']} has no name: skipped", level="warning")
            continue
        keep = group[0]
        if not full:
            # a single template from an event: another row of T may already own the name
            owner = by_name_row.get(name)
            if owner and owner != str(keep["id"]):
                job.skip(
                    str(keep["id"]),
                    f"{_label(keep)} skipped: the name is already used by template {owner} (names must be unique, F1)",
                    level="warning",
                )
                continue
        owner = by_name_row.get(name)
        if owner and any(str(t["id"]) == owner for t in group):
            keep = next(t for t in group if str(t["id"]) == owner)
        for t in group:
            if t is not keep:
                job.skip(
                    str(t["id"]),
                    f"{_label(t)} skipped: the name is already used by template {keep['id']} "
                    f"(names must be unique; the first retrieved is kept, F1)",
                    level="warning",
                )
        winners.append(keep)

    # 2. Plan row changes.
    doomed = [r for tid, r in rows.items() if tid not in seen] if full else []
    doomed_ids = {r["template_id"] for r in doomed}
    renames = {str(t["id"]) for t in winners if str(t["id"]) in rows and rows[str(t["id"])]["name"] != str(t["name"])}
    # Names that stay taken by rows this run does not rename or delete (e.g. the row of a
    # template skipped as a duplicate): a winner may not take one of them. A blocked rename
    # keeps its old name taken in turn, hence the fixpoint.
    blocked: set[str] = set()
    while True:
        stuck = {r["name"]: tid for tid, r in rows.items() if tid not in doomed_ids and tid not in renames - blocked}
        now_blocked = {str(t["id"]) for t in winners if stuck.get(str(t["name"])) not in (None, str(t["id"]))}
        if now_blocked == blocked:
            break
        blocked = now_blocked
    inserts: list[dict[str, Any]] = []
    updates: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for t in winners:
        tid, name, state = str(t["id"]), str(t["name"]), str(t.get("state") or "active")
        row = rows.get(tid)
        holder = stuck.get(name)
        if holder is not None and holder != tid:
            job.skip(
                tid,
                f"{_label(t)} skipped: the name is still used in the table by template {holder} (names must be unique, F1)",
                level="warning",
            )
            continue
        active = _desired_active(state, row)
        if row is None:
            inserts.append({"template_id": tid, "name": name, "is_active": active, "credly_state": state})
            job.rec.count("created")
            job.action("add_template", tid, f"add template {name!r} ({tid}), {state}, is_active={'true' if active else 'false'}")
            continue
        changes: dict[str, Any] = {}
        if row["name"] != name:
            changes["name"] = name
        if row["credly_state"] != state:
            changes["credly_state"] = state
        if row["is_active"] != active:
            changes["is_active"] = active
        if changes:
            updates.append((row, changes))
            job.rec.count("updated")
            what = ", ".join(
                f"{k} {row[k]!r} → {v!r}" if k != "is_active" else f"is_active {bool(row[k])} → {bool(v)}"
                for k, v in changes.items()
            )
            job.action("update_template", tid, f"update template {name!r} ({tid}): {what}")

    # 3. Write everything in one transaction.
    now = utcnow()
    with store.write():
        deactivated = _delete_rows(job, doomed)
        if not job.dry_run:
            # Renames go through temporary names so that swapped names never collide.
            renamed = [(row, ch) for row, ch in updates if "name" in ch]
            for row, _ in renamed:
                store.db.execute(
                    "UPDATE badge_templates SET name = ? WHERE template_id = ?",
                    (f"\x00renaming {row['template_id']}", row["template_id"]),
                )
            for row, changes in updates:
                sets = ", ".join(f"{k} = ?" for k in changes)
                store.db.execute(
                    f"UPDATE badge_templates SET {sets}, updated_at = ? WHERE template_id = ?",
                    (*changes.values(), now, row["template_id"]),
                )
            for ins in inserts:
                store.db.execute(
                    "INSERT INTO badge_templates (template_id, name, is_active, credly_state, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (ins["template_id"], ins["name"], ins["is_active"], ins["credly_state"], now, now),
                )
    if not job.dry_run:
        mappings_service.refresh_template_names(store)
    if doomed:
        if job.dry_run:
            job.rec.info(
                f"would send one deletion notice: {len(doomed)} templates deleted, {len(deactivated)} mappings deactivated"
            )
        else:
            notifications.deletion_notice(
                store,
                [{"template_id": r["template_id"], "name": r["name"]} for r in doomed],
                deactivated,
                flow=job.rec.flow,
                run_id=job.run_id,
            )
            job.rec.info(f"deletion notice sent: {len(doomed)} templates deleted, {len(deactivated)} mappings deactivated")


async def template_event(job: Job, event: dict[str, Any]) -> None:
    """F1 for one `badge_template.*` webhook notice: re-read the event, apply its template."""
    event_id = str(event.get("id") or "")
    if not event_id:
        from services.flows.base import FlowFailed

        raise FlowFailed("the Credly notice has no event id")
    data = await job.credly.get_event(event_id)
    event_type = str(data.get("event_type") or event.get("event_type") or "")
    template = data.get("badge_template") or {}
    tid = str(template.get("id") or "")
    if not tid:
        job.skip(f"event {event_id}", f"event {event_id} ({event_type}) carries no badge template: nothing to do")
        return
    if event_type == "badge_template.deleted":
        job.rec.count("examined")
        row = _rows(job.store).get(tid)
        if row is None:
            job.skip(tid, f"template {tid} deleted in Credly was not in the table: nothing to do")
            return
        with job.store.write():
            deactivated = _delete_rows(job, [row])
        if job.dry_run:
            job.rec.info(f"would send one deletion notice: 1 template deleted, {len(deactivated)} mappings deactivated")
        else:
            notifications.deletion_notice(
                job.store,
                [{"template_id": row["template_id"], "name": row["name"]}],
                deactivated,
                flow=job.rec.flow,
                run_id=job.run_id,
            )
        return
    apply_templates(job, [template], full=False)
