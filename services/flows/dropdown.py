"""F2 — the template table T → the Docebo course additional field (every 5 minutes, on demand).

Design notes: docs/design/flows.md
"""

from __future__ import annotations

import json
from typing import Any

from services.core.errors import NotFoundError
from services.flows.base import FlowFailed, Job
from services.flows.templates import ORPHAN_OPTIONS_META
from services.store.db import utcnow

FIELD_ID_META = "docebo.course_field_id"


def field_name(field: dict[str, Any]) -> str:
    name = field.get("name")
    if isinstance(name, dict):
        return str(name.get("value") or "")
    return str(name or field.get("title") or "")


def field_options(field: dict[str, Any] | None) -> dict[str, str]:
    """{option id (str): label} of a dropdown field."""
    out: dict[str, str] = {}
    for o in (field or {}).get("options") or []:
        label = o.get("label")
        if isinstance(label, dict):
            label = label.get("value") or label.get("english") or ""
        out[str(o.get("id") if o.get("id") is not None else o.get("id_option"))] = str(label or "")
    return out


async def find_course_field(job: Job, name: str) -> dict[str, Any] | None:
    """The dropdown course field named `name` (remembered id first); None when missing."""
    docebo = job.docebo
    remembered = job.store.get_meta(FIELD_ID_META, "") or ""
    if remembered:
        try:
            field = await docebo.get_course_field(remembered)
        except NotFoundError:
            field = None
        if field is not None and field_name(field).strip().casefold() == name.strip().casefold():
            return field
    fields = await docebo.list_course_fields()
    matches = [f for f in fields if field_name(f).strip().casefold() == name.strip().casefold()]
    if not matches:
        return None
    dropdowns = [f for f in matches if str(f.get("type", "")).lower() == "dropdown"]
    if not dropdowns:
        raise FlowFailed(
            f"the Docebo course additional field {name!r} exists but is a {matches[0].get('type')!r} field, "
            "not a dropdown; rename it in Docebo or choose another COURSE_ADDITIONAL_FIELD"
        )
    return dropdowns[0]


async def sync_dropdown(job: Job) -> None:
    store = job.store
    name = job.settings.course_additional_field
    rows = [dict(r) for r in store.db.query("SELECT * FROM badge_templates ORDER BY name COLLATE NOCASE, template_id")]
    job.rec.set_total(len(rows))
    job.rec.count("examined", len(rows))
    field = await find_course_field(job, name)
    remembered = store.get_meta(FIELD_ID_META, "") or ""
    orphans = set(json.loads(store.get_meta(ORPHAN_OPTIONS_META, "[]") or "[]"))

    active = [r for r in rows if r["is_active"]]
    inactive = [r for r in rows if not r["is_active"]]

    if field is None:
        labels = [r["name"] for r in active]
        job.action(
            "create_course_field",
            f"course field {name!r}",
            f"create the dropdown course field {name!r} with {len(labels)} options",
        )
        for r in active:
            job.rec.count("created")
            job.action("add_dropdown_option", r["template_id"], f"add option {r['name']!r} for template {r['template_id']}")
        if job.dry_run:
            return
        created = await job.docebo.create_course_dropdown_field(name, labels)
        fid = str(created.get("id"))
        by_label: dict[str, str] = {}
        for oid, label in field_options(created).items():
            by_label.setdefault(label, oid)
        _store_ids(
            job,
            fid,
            {r["template_id"]: by_label.get(r["name"], "") for r in active},
            clear=[r["template_id"] for r in rows if r["dropdown_element_id"] and not r["is_active"]],
            orphans_done=orphans,
        )
        job.rec.info(f"created course field {name!r} (id {fid}) with {len(labels)} options")
        job.rec.progress(len(rows), len(rows))
        return

    fid = str(field.get("id"))
    same_field = fid == remembered or not remembered
    options = field_options(field)
    claimed: set[str] = set()
    assign: dict[str, str] = {}  # template id → option id (stored after the call)
    renamed: dict[str, str] = {}
    new_rows: list[dict[str, Any]] = []

    # 1. Active templates whose stored option still exists keep it (rename if needed).
    rest: list[dict[str, Any]] = []
    for r in active:
        oid = r["dropdown_element_id"] if same_field else ""
        if oid and oid in options and oid not in claimed:
            claimed.add(oid)
            if options[oid] != r["name"]:
                renamed[oid] = r["name"]
                job.rec.count("updated")
                job.action(
                    "rename_dropdown_option",
                    r["template_id"],
                    f"rename option {oid} from {options[oid]!r} to {r['name']!r}",
                )
                assign[r["template_id"]] = oid
            elif r["option_label"] != r["name"]:
                assign[r["template_id"]] = oid
        else:
            rest.append(r)
    # 2. The others adopt an unclaimed option of their name (left by an interrupted run) or get one.
    known = {r["dropdown_element_id"] for r in rows if r["dropdown_element_id"]} if same_field else set()
    for r in rest:
        match = next(
            (
                oid
                for oid, label in options.items()
                if label == r["name"]
                and oid not in claimed
                and (oid not in known or oid in orphans or oid == r["dropdown_element_id"])
            ),
            None,
        )
        if match is not None:
            claimed.add(match)
            assign[r["template_id"]] = match
            job.rec.info(f"template {r['name']!r} adopts the existing option {match}", object=r["template_id"])
        else:
            new_rows.append(r)
            job.rec.count("created")
            job.action("add_dropdown_option", r["template_id"], f"add option {r['name']!r} for template {r['template_id']}")
    # 3. Options of inactive templates and of deleted templates go.
    deleted: list[str] = []
    clear: list[str] = []
    for r in inactive:
        oid = r["dropdown_element_id"]
        if not oid:
            continue
        clear.append(r["template_id"])
        if same_field and oid in options and oid not in claimed and oid not in deleted:
            deleted.append(oid)
            job.rec.count("deleted")
            job.action(
                "remove_dropdown_option",
                r["template_id"],
                f"remove option {oid} ({options[oid]!r}): template {r['name']!r} is not active",
            )
    for oid in sorted(orphans):
        if oid in options and oid not in claimed and oid not in deleted:
            deleted.append(oid)
            job.rec.count("deleted")
            job.action(
                "remove_dropdown_option",
                f"option {oid}",
                f"remove option {oid} ({options[oid]!r}): its template was deleted in Credly",
            )
    # Active rows whose stored id vanished (or belongs to another field) are cleared unless re-assigned.
    for r in active:
        if r["dropdown_element_id"] and r["template_id"] not in assign and r["dropdown_element_id"] not in claimed:
            clear.append(r["template_id"])

    if job.dry_run:
        return
    if new_rows or renamed or deleted:
        before = set(options)
        updated = await job.docebo.update_course_dropdown_options(
            fid, new=[r["name"] for r in new_rows], renamed=renamed, deleted=deleted
        )
        after = field_options(updated)
        fresh: dict[str, list[str]] = {}
        for oid, label in after.items():
            if oid not in before:
                fresh.setdefault(label, []).append(oid)
        for r in new_rows:
            ids = fresh.get(r["name"]) or []
            if ids:
                assign[r["template_id"]] = ids.pop(0)
            else:
                job.rec.warning(
                    f"Docebo did not return an option for {r['name']!r}; the next run adds it", object=r["template_id"]
                )
    else:
        job.rec.info("the course field is up to date: no write call")
    _store_ids(job, fid, assign, clear=clear, orphans_done=orphans)
    job.rec.progress(len(rows), len(rows))


def _store_ids(job: Job, fid: str, assign: dict[str, str], *, clear: list[str], orphans_done: set[str]) -> None:
    store = job.store
    now = utcnow()
    names = {r["template_id"]: r["name"] for r in store.db.query("SELECT template_id, name FROM badge_templates")}
    with store.write():
        for tid in clear:
            if tid not in assign:
                store.db.execute(
                    "UPDATE badge_templates SET dropdown_element_id = '', option_label = '', updated_at = ? WHERE template_id = "
                    "?",
                    (now, tid),
                )
        for tid, oid in assign.items():
            if not oid:
                continue
            store.db.execute(
                "UPDATE badge_templates SET dropdown_element_id = ?, option_label = ?, updated_at = ? WHERE template_id = ?",
                (oid, names.get(tid, ""), now, tid),
            )
        if store.get_meta(FIELD_ID_META) != fid:
            store.set_meta(FIELD_ID_META, fid)
        if orphans_done:
            current = set(json.loads(store.get_meta(ORPHAN_OPTIONS_META, "[]") or "[]"))
            store.set_meta(ORPHAN_OPTIONS_META, json.dumps(sorted(current - orphans_done)))
