"""Mappings: the M table (SPEC §1, M1–M4), paged in SQL so 50,000 rows stay instant.

Design notes: docs/design/console.md
"""

from __future__ import annotations

from functools import partial
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from screens.base import flow_context, flows_available
from screens.confirm import ConfirmScreen
from screens.csv_export import CsvExportScreen
from screens.csv_import import CsvImportScreen, describe_result
from screens.mapping_form import MappingForm
from screens.paged import PagedScreen, PageQuery
from screens.widgets.paged_table import plain, yes_no
from services.core.errors import MissingError
from services.store.db import Store
from services.store.mappings import (
    MappingInput,
    add_mapping,
    count_mappings,
    edit_mapping,
    get_mapping,
    query_mappings,
    remove_mapping,
    set_mapping_active,
)

# Column key → (heading, width, sort column).
COLUMNS: tuple[tuple[str, str, int, str], ...] = (
    ("id", "Id", 7, "id"),
    ("template", "Template", 32, "template_name"),
    ("learning_plan_id", "Learning plan", 13, "learning_plan_id"),
    ("certification_code", "Certification", 18, "certification_code"),
    ("external", "Ext. training", 13, "import_as_external_training"),
    ("active", "Active", 7, "is_active"),
    ("check", "Check (M3)", 12, "check_status"),
)
SORTS = tuple(c[3] for c in COLUMNS)
VIEWS: tuple[tuple[str, bool | None], ...] = (("all", None), ("active", True), ("inactive", False))


def mapping_cells(row: dict) -> list[Any]:
    template = row["template_name"] or row["template_id"]
    template_text = plain(template)
    if not row.get("template_known", True):
        template_text = Text(template + " ?", style="yellow")
    if row["check_status"] == "broken":
        check = Text("✘ broken", style="bold red")
    elif row["check_status"] == "ok":
        check = Text("✔ ok", style="green")
    else:
        check = Text("—", style="dim")
    return [
        plain(row["id"]), template_text, plain(row["learning_plan_id"] or "—"),
        plain(row["certification_code"] or "—"), yes_no(row["import_as_external_training"]),
        yes_no(row["is_active"]), check,
    ]


def _edit(mapping_id: int, store: Store, data: MappingInput) -> dict:
    return edit_mapping(store, mapping_id, data)


class MappingsScreen(PagedScreen):
    TITLE_TEXT = "Mappings"
    NAME = "mappings"
    COLUMNS = tuple((key, heading, width) for key, heading, width, _ in COLUMNS)
    FILTER_PLACEHOLDER = "template id or name, learning plan id, certification code"
    VIEWS = VIEWS
    BINDINGS = [
        Binding("slash", "focus_filter", "Filter", id="mappings.filter", tooltip="Filter by template, plan or code"),
        Binding("n", "add", "Add", id="mappings.add", tooltip="Add a mapping"),
        Binding("e", "edit", "Edit", id="mappings.edit", tooltip="Edit the highlighted mapping"),
        Binding("d", "delete", "Delete", show=False, id="mappings.delete", tooltip="Delete the highlighted mapping"),
        Binding("space", "toggle_active", "On/off", id="mappings.toggle",
                tooltip="Activate or deactivate the highlighted mapping"),
        Binding("v", "cycle_view", "View", show=False, id="mappings.view", tooltip="Show all, active or inactive"),
        Binding("s", "cycle_sort", "Sort", show=False, id="mappings.sort", tooltip="Sort by the next column"),
        Binding("S", "reverse_sort", "Reverse", show=False, id="mappings.reverse", tooltip="Reverse the sort order"),
        Binding("i", "import_csv", "Import", show=False, id="mappings.import",
                tooltip="Import mappings from a CSV file (M4)"),
        Binding("x", "export_csv", "Export", show=False, id="mappings.export", tooltip="Export the mappings to a CSV file"),
        Binding("m", "check", "Check", id="mappings.check",
                tooltip="Check every mapping against Docebo and Credly (M3)"),
        Binding("r", "reload", "Reload", show=False, id="mappings.reload", tooltip="Read the table again"),
        Binding("escape", "focus_table", "Table", show=False, id="mappings.focus_table"),
    ]

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.sort = "id"
        self.descending = False

    def compose_body(self) -> ComposeResult:
        yield from self.compose_filter()
        with Vertical(id="mappings-body"):
            yield from self.compose_table()
            yield Static("", id="mapping-detail", classes="help-line")

    # -- loading ------------------------------------------------------------------------------
    def page_query(self) -> PageQuery:
        text, active = self.filter_text, self.view_value
        return PageQuery(count=partial(count_mappings, text=text, active=active),
                         fetch=partial(query_mappings, text=text, active=active, sort=self.sort,
                                       descending=self.descending))

    def row_cells(self, row: dict) -> list[Any]:
        return mapping_cells(row)

    def status_text(self) -> str:
        parts = [f"Mappings: {self.table.position_text()}"]
        if self.filter_text:
            parts.append(f"matching “{self.filter_text}”")
        parts.append(f"view ({self.key_hint('mappings.view')}): {self.view_name}")
        heading = next(c[1] for c in COLUMNS if c[3] == self.sort)
        parts.append(f"sort ({self.key_hint('mappings.sort')}): {heading}{' ↓' if self.descending else ' ↑'}")
        parts.append(f"{self.key_hint('app.keys')} all keys")
        return "  ·  ".join(parts)

    def show_detail(self) -> None:
        row = self.current_row
        detail = self.query_one("#mapping-detail", Static)
        if row is None:
            detail.update("")
            return
        text = Text(f"#{row['id']}  template {row['template_id']}")
        if not row.get("template_known", True):
            text.append("  (not in the template table)", style="yellow")
        if row["check_status"]:
            style = "bold red" if row["check_status"] == "broken" else "green"
            when = f" ({row['checked_at'][:16].replace('T', ' ')} UTC)" if row["checked_at"] else ""
            text.append(f"\nM3 check{when}: {row['check_status']}", style=style)
            if row["check_message"]:
                text.append(f" — {row['check_message']}", style=style)
        detail.update(text)

    # -- sort ---------------------------------------------------------------------------------
    def action_cycle_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self.descending = False
        self.load(0, "first")

    def action_reverse_sort(self) -> None:
        self.descending = not self.descending
        self.load(0, "first")

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        sort = dict((c[0], c[3]) for c in COLUMNS).get(str(event.column_key.value))
        if sort is None:
            return
        if sort == self.sort:
            self.descending = not self.descending
        else:
            self.sort, self.descending = sort, False
        self.load(0, "first")

    # -- editing ------------------------------------------------------------------------------
    def action_add(self) -> None:
        def saved(row: dict | None) -> None:
            if row is not None:
                self.notify(f"Mapping #{row['id']} added.", markup=False)
                self._show_row(row["id"])

        self.app.push_screen(MappingForm(self.ctx, save=add_mapping), saved)

    def row_selected(self) -> None:
        self.action_edit()

    def action_edit(self) -> None:
        mapping_id = self.current_id
        if mapping_id is None:
            return

        def job(store: Store) -> dict | None:
            return get_mapping(store, mapping_id)

        def open_form(row: dict | None) -> None:
            if row is None:
                self.notify(f"Mapping #{mapping_id} no longer exists.", severity="warning", markup=False)
                self.action_reload()
                return

            def saved(result: dict | None) -> None:
                if result is not None:
                    self.notify(f"Mapping #{result['id']} saved.", markup=False)
                    self.action_reload()

            self.app.push_screen(MappingForm(self.ctx, save=partial(_edit, mapping_id), mapping=row), saved)

        self.background(job, open_form, group="mappings-open", description="Opening the mapping")

    def _show_row(self, mapping_id: int) -> None:
        """Reload with the cursor on `mapping_id` when it is on the current page; else stay."""
        self.load(cursor=str(mapping_id))

    def action_delete(self) -> None:
        mapping_id = self.current_id
        if mapping_id is None:
            return
        row = self.rows.get(str(mapping_id), {})
        label = row.get("template_name") or row.get("template_id", "")

        def answered(yes: bool | None) -> None:
            if not yes:
                return

            def done(removed: dict) -> None:
                self.notify(f"Mapping #{removed['id']} deleted.", markup=False)
                self.action_reload()

            self.background(lambda store: remove_mapping(store, mapping_id), done, group="mappings-write",
                            exclusive=False, description="Deleting the mapping")

        self.app.push_screen(ConfirmScreen("Delete mapping", f"Delete mapping #{mapping_id} ({label})? "
                                           "This cannot be undone.", yes="Delete", danger=True), answered)

    def action_toggle_active(self) -> None:
        mapping_id = self.current_id
        if mapping_id is None:
            return

        def job(store: Store) -> dict:
            row = get_mapping(store, mapping_id)
            if row is None:
                raise MissingError(f"mapping #{mapping_id} no longer exists")
            return set_mapping_active(store, mapping_id, not row["is_active"])

        def done(row: dict) -> None:
            self.notify(f"Mapping #{row['id']}: {'active' if row['is_active'] else 'inactive'}.", markup=False)
            self.action_reload()

        self.background(job, done, group="mappings-write", exclusive=False, description="Toggling the mapping")

    # -- CSV ----------------------------------------------------------------------------------
    def action_import_csv(self) -> None:
        def done(result: Any) -> None:
            if result is not None:
                self.notify(f"Imported: {describe_result(result)}.", markup=False)
                self.load(0, "first")

        self.app.push_screen(CsvImportScreen(self.ctx), done)

    def action_export_csv(self) -> None:
        def done(result: tuple[str, int] | None) -> None:
            if result is not None:
                path, count = result
                self.notify(f"Exported {count} mappings to {path}.", markup=False)

        self.app.push_screen(CsvExportScreen(self.ctx), done)

    # -- M3 -----------------------------------------------------------------------------------
    def action_check(self) -> None:
        if not flows_available():
            self.notify("The mapping check (M3) is not part of this build yet.", severity="warning", markup=False)
            return
        if not (self.ctx.has_client("credly") and self.ctx.has_client("docebo")):
            self.notify("Checking mappings needs both the Credly and the Docebo connection.", severity="warning",
                        markup=False)
            return
        ctx = self.ctx
        self.query_one("#mappings-status", Static).update(Text("Checking every mapping against Docebo and Credly…"))

        async def job(store: Store) -> list[dict]:
            from services.clients.budget import caller_class
            from services.flows import check_mappings

            # M3 checks are the console's interactive calls: ahead of batch calls (issue 15).
            with caller_class("console"):
                async with flow_context(ctx, store) as fctx:
                    return await check_mappings(fctx)

        def done(results: list[dict]) -> None:
            broken = sum(1 for r in results if r["status"] == "broken")
            self.notify(f"Checked {len(results)} mappings: {broken} broken.",
                        severity="warning" if broken else "information", markup=False)
            self.action_reload()

        self.background_async(job, done, group="mappings-check", description="Checking mappings (M3)")
