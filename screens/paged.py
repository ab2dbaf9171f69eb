"""What the section screens built around one paged SQL table share (templates, mappings,
notifications, inbox): DESIGN.md "Tables show a page of SQL results ... filter-as-you-type in SQL".

Design notes: docs/design/console.md
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, Label, Static

from screens.base import ConsoleScreen
from screens.widgets.paged_table import DEFAULT_PAGE_SIZE, PagedTable
from services.store.db import Store


@dataclass(frozen=True)
class PageQuery:
    """What one page load reads, fixed when the load starts: `count(store)` → total rows,
    `fetch(store, limit=, offset=)` → the rows, and optionally `extra(store)` → figures for the
    status line (e.g. the inbox counts)."""

    count: Callable[[Store], int]
    fetch: Callable[..., list[dict]]
    extra: Callable[[Store], Any] | None = None


@dataclass(frozen=True)
class Page:
    rows: list[dict]
    total: int
    offset: int
    extra: Any = None


def clamp_offset(offset: int, total: int, size: int) -> int:
    """`offset`, moved back to the first row of the last page when the table has shrunk."""
    if total <= 0:
        return 0
    return max(0, min(offset, (total - 1) // size * size))


def read_page(store: Store, query: PageQuery, offset: int, size: int) -> Page:
    """One page of `query` at `offset` (clamped), with its total and extras. Runs in a worker."""
    total = query.count(store)
    start = clamp_offset(offset, total, size)
    rows = query.fetch(store, limit=size, offset=start)
    return Page(rows=rows, total=total, offset=start, extra=query.extra(store) if query.extra else None)


class PagedScreen(ConsoleScreen):
    """Base of a section screen around one paged SQL table (module doc)."""

    NAME: ClassVar[str] = ""  # widget ids and worker groups: "<NAME>-table", "<NAME>-page", ...
    COLUMNS: ClassVar[tuple[tuple[str, str, int | None], ...]] = ()  # (key, heading, width)
    FILTER_PLACEHOLDER: ClassVar[str] = ""  # non-empty: the screen has a filter bar
    VIEWS: ClassVar[tuple[tuple[str, Any], ...]] = (("all", None),)  # (name, value for the query)
    REFRESH_SECONDS: ClassVar[float | None] = None  # rows that change by themselves: re-read
    PAGE_SIZE: ClassVar[int] = DEFAULT_PAGE_SIZE

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.filter_text = ""
        self.view = 0
        self.rows: dict[str, dict] = {}  # the rows of the page shown, by row key
        self.page_extra: Any = None

    # -- what a screen says (hooks) -----------------------------------------------------------
    def page_query(self) -> PageQuery:
        raise NotImplementedError

    def row_key(self, row: dict) -> Any:
        return row["id"]

    def row_cells(self, row: dict) -> list[Any]:
        raise NotImplementedError

    def status_text(self) -> str:
        return f"{self.TITLE_TEXT}{self.filter_note()}: {self.table.position_text()}"

    def show_detail(self) -> None:
        """Paint the detail of the highlighted row (`current_row`); called after every load and
        on every cursor move."""

    def row_selected(self) -> None:
        """Enter on a row."""

    # -- building blocks for compose_body -----------------------------------------------------
    def compose_filter(self) -> ComposeResult:
        with Horizontal(classes="filter-bar"):
            yield Label("Filter")
            yield Input(placeholder=self.FILTER_PLACEHOLDER, id=f"{self.NAME}-filter", compact=True)

    def compose_table(self) -> ComposeResult:
        yield PagedTable(id=f"{self.NAME}-table", page_size=self.PAGE_SIZE)
        yield Static("", id=f"{self.NAME}-status", classes="status-line")

    # -- state --------------------------------------------------------------------------------
    @property
    def table(self) -> PagedTable:
        return self.query_one(f"#{self.NAME}-table", PagedTable)

    @property
    def current_key(self) -> str | None:
        return self.table.current_key

    @property
    def current_row(self) -> dict | None:
        return self.rows.get(self.current_key or "")

    @property
    def current_id(self) -> int | None:
        key = self.current_key
        return int(key) if key is not None else None

    @property
    def view_name(self) -> str:
        return self.VIEWS[self.view][0]

    @property
    def view_value(self) -> Any:
        return self.VIEWS[self.view][1]

    def key_hint(self, binding_id: str) -> str:
        """The key that runs binding `binding_id` (this screen's or the app's), after the
        `[keymap]`, for hints such as "view (v)"."""
        app: Any = self.app
        for binding in [*type(self).BINDINGS, *getattr(app, "BINDINGS", ())]:
            if getattr(binding, "id", None) == binding_id:
                return app.key_for(binding) if hasattr(app, "key_for") else binding.key
        return "?"

    def filter_note(self) -> str:
        return f" matching “{self.filter_text}”" if self.filter_text else ""

    # -- loading ------------------------------------------------------------------------------
    def on_mount(self) -> None:
        table = self.table
        for key, heading, width in self.COLUMNS:
            table.add_column(heading, width=width, key=key)
        table.focus()
        self.load(0, "first")
        if self.REFRESH_SECONDS:
            self.set_interval(self.REFRESH_SECONDS, self._tick)

    def _tick(self) -> None:
        if self in self.app.screen_stack:
            self.action_reload()

    def load(self, offset: int | None = None, cursor: Any = "keep") -> None:
        """Read the page at `offset` (default: the current one) in a worker and show it with the
        cursor on `cursor` ("first", "last", "keep" or a row key)."""
        table = self.table
        query = self.page_query()
        size = table.page_size
        start = table.page_offset if offset is None else offset

        def show(page: Page) -> None:
            self.rows = {str(self.row_key(r)): r for r in page.rows}
            self.page_extra = page.extra
            table.show_page(((self.row_key(r), self.row_cells(r)) for r in page.rows), offset=page.offset,
                            total=page.total, cursor=cursor)
            self.query_one(f"#{self.NAME}-status", Static).update(Text(self.status_text()))
            self.show_detail()

        self.background(lambda store: read_page(store, query, start, size), show, group=f"{self.NAME}-page",
                        description=f"Loading the {self.TITLE_TEXT.lower()}")

    def on_paged_table_page_wanted(self, event: PagedTable.PageWanted) -> None:
        self.load(event.offset, event.cursor)

    def action_reload(self) -> None:
        self.load()

    def action_cycle_view(self) -> None:
        self.view = (self.view + 1) % len(self.VIEWS)
        self.load(0, "first")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table is self.table:
            self.show_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table is self.table:
            event.stop()
            self.row_selected()

    # -- filter -------------------------------------------------------------------------------
    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == f"{self.NAME}-filter":
            self.filter_text = event.value.strip()
            self.load(0, "first")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == f"{self.NAME}-filter":
            self.action_focus_table()

    def action_focus_filter(self) -> None:
        if self.FILTER_PLACEHOLDER:
            self.query_one(f"#{self.NAME}-filter", Input).focus()

    def action_focus_table(self) -> None:
        self.table.focus()

