"""Badge templates: the T table (SPEC §1, T1–T3) as the admin sees it.

Design notes: docs/design/console.md
"""

from __future__ import annotations

from functools import partial
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static

from screens.base import client, flow_context, flows_available
from screens.paged import PagedScreen, PageQuery
from screens.widgets.paged_table import plain, yes_no
from services.core.errors import MissingError
from services.store.db import Store
from services.store.templates import count_templates, get_template, query_templates, set_template_active, template_usage

# The store key under which F2 remembers the id of the Docebo course field (flows engineer's
# `services.flows.dropdown.FIELD_ID_META`).
COURSE_FIELD_META = "docebo.course_field_id"
USAGE_SHOWN = 50


class TemplatesScreen(PagedScreen):
    TITLE_TEXT = "Badge templates"
    NAME = "templates"
    COLUMNS = (("name", "Name", 34), ("active", "Active", 7), ("state", "Credly", 9), ("option", "Option", 7),
               ("id", "Template id", 36))
    FILTER_PLACEHOLDER = "name or template id"
    BINDINGS = [
        Binding("slash", "focus_filter", "Filter", id="templates.filter", tooltip="Filter by name or id"),
        Binding("space", "toggle_active", "On/off", id="templates.toggle",
                tooltip="Activate or deactivate the highlighted template (T2)"),
        Binding("c", "courses", "Courses", id="templates.courses",
                tooltip="Look up the Docebo courses that use the highlighted template"),
        Binding("s", "sync_now", "Sync now", id="templates.sync", tooltip="Run F1 then F2 now"),
        Binding("r", "reload", "Reload", show=False, id="templates.reload", tooltip="Read the table again"),
        Binding("escape", "focus_table", "Table", show=False, id="templates.focus_table"),
    ]

    def compose_body(self) -> ComposeResult:
        yield from self.compose_filter()
        with Horizontal(id="templates-body"):
            with Vertical(id="templates-left"):
                yield from self.compose_table()
            with VerticalScroll(id="template-detail", classes="panel"):
                yield Static("", id="template-usage")
                yield Static("", id="template-courses")

    # -- loading ------------------------------------------------------------------------------
    def page_query(self) -> PageQuery:
        text = self.filter_text
        return PageQuery(count=partial(count_templates, text=text), fetch=partial(query_templates, text=text))

    def row_key(self, row: dict) -> str:
        return row["template_id"]

    def row_cells(self, row: dict) -> list[Any]:
        state = Text(row["credly_state"], style="dim" if row["credly_state"] == "active" else "yellow")
        active = yes_no(row["is_active"])
        if not row["is_active"] and row["admin_deactivated"]:
            active = Text("· off", style="yellow")
        return [plain(row["name"]), active, state, plain(row["dropdown_element_id"] or "—"), plain(row["template_id"])]

    def status_text(self) -> str:
        return (f"Templates{self.filter_note()}: {self.table.position_text()}   "
                "· off = deactivated by an admin (F1 keeps it off)")

    # -- detail -------------------------------------------------------------------------------
    def show_detail(self) -> None:
        key = self.current_key
        usage = self.query_one("#template-usage", Static)
        self.query_one("#template-courses", Static).update(Text("Courses: press c to look them up in Docebo",
                                                                 style="dim"))
        if key is None:
            usage.update(Text("No template selected.", style="dim"))
            return

        def job(store: Store) -> tuple[dict | None, list[dict]]:
            return get_template(store, key), template_usage(store, key)

        def show(result: tuple[dict | None, list[dict]]) -> None:
            template, mappings = result
            if template is None:
                usage.update(Text("This template is no longer in the table.", style="dim"))
                return
            text = Text()
            text.append(template["name"] + "\n", style="bold")
            text.append(f"{template['template_id']}\n", style="dim")
            text.append(f"Credly state: {template['credly_state']}  ·  active here: "
                        f"{'yes' if template['is_active'] else 'no'}\n")
            text.append(f"Dropdown option: {template['dropdown_element_id'] or 'none yet (F2 adds it)'}\n\n")
            text.append(f"Used by {len(mappings)} mapping{'s' if len(mappings) != 1 else ''}\n", style="bold")
            for m in mappings[:USAGE_SHOWN]:
                sides = []
                if m["learning_plan_id"]:
                    sides.append(f"learning plan {m['learning_plan_id']}")
                if m["certification_code"]:
                    sides.append(f"certification {m['certification_code']}")
                if m["import_as_external_training"]:
                    sides.append("external training")
                state = "" if m["is_active"] else " (inactive)"
                text.append(f"  #{m['id']}: {', '.join(sides)}{state}\n")
            if len(mappings) > USAGE_SHOWN:
                text.append(f"  … and {len(mappings) - USAGE_SHOWN} more (see Mappings)\n", style="dim")
            usage.update(text)

        self.background(job, show, group="templates-detail", description="Loading the template's usage")

    def action_courses(self) -> None:
        key = self.current_key
        if key is None:
            return
        if not self.ctx.has_client("docebo"):
            self.notify("No Docebo connection in this console.", severity="warning", markup=False)
            return
        ctx = self.ctx
        target = self.query_one("#template-courses", Static)
        target.update(Text("Courses: looking them up in Docebo…", style="dim"))

        async def job(store: Store) -> str:
            template = get_template(store, key)
            option = (template or {}).get("dropdown_element_id", "")
            field_id = store.get_meta(COURSE_FIELD_META, "") or ""
            if not option:
                return "Courses: none — the template has no dropdown option yet (F2 adds one)."
            if not field_id:
                return "Courses: unknown — F2 has not found or created the course field yet."
            found: list[str] = []
            async with client(ctx, "docebo") as docebo:
                async for course in docebo.iter_courses():
                    value = docebo.course_field_value(course, field_id)
                    if value is not None and str(value) == str(option):
                        found.append(f"  {course.get('id_course', course.get('id', '?'))}: "
                                     f"{course.get('name', course.get('title', ''))}")
            if not found:
                return "Courses: no Docebo course has this template in its badge field."
            return f"Courses using it ({len(found)}):\n" + "\n".join(found)

        def show(text: str) -> None:
            target.update(Text(text))

        self.background_async(job, show, group="templates-courses", description="Looking up courses")

    # -- actions ------------------------------------------------------------------------------
    def action_toggle_active(self) -> None:
        key = self.current_key
        if key is None:
            return

        def job(store: Store) -> dict:
            row = get_template(store, key)
            if row is None:
                raise MissingError(f"template {key} is no longer in the table")
            return set_template_active(store, key, not row["is_active"])

        def done(row: dict) -> None:
            self.notify(f"{row['name']}: {'active' if row['is_active'] else 'inactive'}.", markup=False)
            self.action_reload()

        self.background(job, done, group="templates-toggle", exclusive=False, description="Toggling the template")

    def action_sync_now(self) -> None:
        if not flows_available():
            self.notify("The sync flows are not part of this build yet.", severity="warning", markup=False)
            return
        ctx = self.ctx
        self.notify("Syncing templates (F1) and the Docebo dropdown (F2)…", markup=False)

        async def job(store: Store) -> list[Any]:
            from services.flows import run_flow

            results = []
            async with flow_context(ctx, store) as fctx:
                for name in ("templates", "dropdown"):
                    summary = await run_flow(name, fctx, trigger="console")
                    results.append(summary)
                    if summary.status not in ("succeeded", "skipped"):
                        break
            return results

        def done(results: list[Any]) -> None:
            for summary in results:
                counts = ", ".join(f"{k} {v}" for k, v in summary.counts.items() if v)
                text = f"{summary.flow}: {summary.status}" + (f" — {summary.reason}" if summary.reason else "")
                if counts:
                    text += f" ({counts})"
                ok = summary.status in ("succeeded", "skipped") and not summary.counts.get("failed")
                self.notify(text, severity="information" if ok else "error", markup=False, timeout=8)
            self.action_reload()

        self.background_async(job, done, group="templates-sync", description="Template sync")
