"""F1 (Credly templates → T) and F2 (T → the Docebo course dropdown) against the sandboxes."""

from __future__ import annotations

import dataclasses

from services.store import notifications, runs
from services.store.templates import set_template_active
from tests.flows.world import T_ARCHIVED, T_DRAFT, T_FIRE, T_SAFETY, base_data, tid


def _rows(store):
    return {r["template_id"]: dict(r) for r in store.db.query("SELECT * FROM badge_templates")}


async def test_F1_reads_every_page_active_archived_and_ignores_drafts(make_world):
    extra = [
        {
            "id": tid(100 + i),
            "name": f"Extra {i:03d}",
            "state": "active",
            "allow_duplicate_badges": False,
            "description": "",
            "default_expires_in_days": None,
        }
        for i in range(60)
    ]
    data = base_data()
    w = make_world(dataclasses.replace(data, templates=data.templates + extra))
    s = await w.run("templates")
    assert s.status == "succeeded", s.reason
    rows = _rows(w.store)
    assert len(rows) == 5 + 60  # 66 templates, the draft ignored: more than one page of 50
    assert T_DRAFT not in rows
    assert rows[T_SAFETY]["is_active"] == 1 and rows[T_ARCHIVED]["is_active"] == 0
    assert rows[T_ARCHIVED]["credly_state"] == "archived"
    assert s.counts["created"] == 65 and s.counts["examined"] == 66
    # idempotent: a second run changes nothing
    s2 = await w.run("templates")
    assert s2.counts["created"] == s2.counts["updated"] == s2.counts["deleted"] == 0
    assert s2.actions == []


async def test_F1_admin_false_stays_false_and_archive_unarchive(world):
    await world.run("templates")
    set_template_active(world.store, T_SAFETY, False)
    world.credly_state.update_template(T_FIRE, state="archived")
    s = await world.run("templates")
    rows = _rows(world.store)
    assert rows[T_SAFETY]["is_active"] == 0  # the sync never re-activates an admin's false
    assert rows[T_FIRE]["is_active"] == 0 and rows[T_FIRE]["credly_state"] == "archived"
    world.credly_state.update_template(T_FIRE, state="active")
    await world.run("templates")
    assert _rows(world.store)[T_FIRE]["is_active"] == 1
    assert _rows(world.store)[T_SAFETY]["is_active"] == 0
    assert s.counts["updated"] == 1


async def test_F1_duplicate_names_keep_the_first_and_warn_naming_both_ids(world):
    dup = world.credly_state.add_template("Safety Basics")  # same name as T_SAFETY, retrieved later
    s = await world.run("templates")
    rows = _rows(world.store)
    assert T_SAFETY in rows and dup.id not in rows
    warnings = runs.query_run_log(world.store, s.run_id, level="warning")
    assert any(dup.id in w["message"] and T_SAFETY in w["message"] for w in warnings)
    assert s.counts["skipped"] == 1


async def test_F1_rename_and_name_swap(world):
    await world.run("templates")
    world.credly_state.update_template(T_SAFETY, name="Fire Warden")
    world.credly_state.update_template(T_FIRE, name="Safety Basics")
    s = await world.run("templates")
    assert s.status == "succeeded", s.reason
    rows = _rows(world.store)
    assert rows[T_SAFETY]["name"] == "Fire Warden" and rows[T_FIRE]["name"] == "Safety Basics"


async def test_F1_deleted_template_row_gone_mappings_deactivated_one_notice(world):
    gone = world.credly_state.add_template("Short Lived")
    gone2 = world.credly_state.add_template("Also Gone")
    await world.run("templates")
    m1 = world.add_mapping(gone.id, lp="501")
    m2 = world.add_mapping(gone2.id, et=True)
    m3 = world.add_mapping(T_SAFETY, lp="501")
    world.credly_state.delete_template(gone.id)
    world.credly_state.delete_template(gone2.id)
    s = await world.run("templates")
    rows = _rows(world.store)
    assert gone.id not in rows and gone2.id not in rows and s.counts["deleted"] == 2
    active = {r["id"]: r["is_active"] for r in world.store.db.query("SELECT id, is_active FROM mappings")}
    assert active == {m1: 0, m2: 0, m3: 1}
    notices = notifications.list_notifications(world.store, kind="deletion_notice")
    assert len(notices) == 1
    body = notices[0]["body"]
    assert gone.id in body and gone2.id in body and f"mapping {m1}" in body and f"mapping {m2}" in body


async def test_F1_template_event_applies_one_template(world):
    from services.flows import handle_template_event

    await world.run("templates")
    world.credly_state.update_template(T_FIRE, name="Fire Marshal")
    event = world.credly_state.list_events()[-1]
    s = await handle_template_event(world.ctx, world.credly_state.notice(event))
    assert s.status == "succeeded", s.reason
    assert _rows(world.store)[T_FIRE]["name"] == "Fire Marshal"
    assert runs.get_run(world.store, s.run_id)["trigger"] == "webhook"


async def test_F2_creates_field_adds_options_then_no_write_when_unchanged(world):
    await world.run("templates")
    s = await world.run("dropdown")
    assert s.status == "succeeded", s.reason
    fid = int(world.store.get_meta("docebo.course_field_id"))
    field = world.docebo_state.course_fields[fid]
    assert field["name"] == "Credly badge" and field["type"] == "dropdown"
    rows = _rows(world.store)
    active = {t: r for t, r in rows.items() if r["is_active"]}
    assert sorted(field["options"].values()) == sorted(r["name"] for r in active.values())
    for r in active.values():
        assert field["options"][int(r["dropdown_element_id"])] == r["name"]
    assert rows[T_ARCHIVED]["dropdown_element_id"] == ""
    before = world.writes()
    s2 = await world.run("dropdown")
    assert s2.status == "succeeded" and world.writes() == before  # F2: no write call when unchanged
    assert s2.actions == []


async def test_F2_rename_deactivate_and_deleted_template(world):
    gone = world.credly_state.add_template("Temporary")
    await world.run("templates")
    await world.run("dropdown")
    fid = int(world.store.get_meta("docebo.course_field_id"))
    world.credly_state.update_template(T_FIRE, name="Fire Marshal")
    world.credly_state.delete_template(gone.id)
    await world.run("templates")
    set_template_active(world.store, T_SAFETY, False)
    s = await world.run("dropdown")
    assert s.status == "succeeded", s.reason
    assert (s.counts["updated"], s.counts["deleted"]) == (1, 2)
    options = world.docebo_state.course_fields[fid]["options"]
    assert "Fire Marshal" in options.values() and "Fire Warden" not in options.values()
    assert "Safety Basics" not in options.values() and "Temporary" not in options.values()
    assert _rows(world.store)[T_SAFETY]["dropdown_element_id"] == ""
    # re-activating gives the template an option again
    set_template_active(world.store, T_SAFETY, True)
    s = await world.run("dropdown")
    assert s.counts["created"] == 1 and "Safety Basics" in world.docebo_state.course_fields[fid]["options"].values()


async def test_F2_finds_an_existing_field_by_name_and_adopts_options(world):
    field = world.docebo_state.create_field("dropdown", "Credly badge", ["Safety Basics"])
    await world.run("templates")
    s = await world.run("dropdown")
    assert s.status == "succeeded", s.reason
    assert world.store.get_meta("docebo.course_field_id") == str(field["id"])
    options = world.docebo_state.course_fields[field["id"]]["options"]
    assert list(options.values()).count("Safety Basics") == 1  # adopted, not added twice
    safety = next(o for o, label in options.items() if label == "Safety Basics")
    assert _rows(world.store)[T_SAFETY]["dropdown_element_id"] == str(safety)
