"""A DataTable that shows one page of an SQL query (DESIGN.md: "Tables show a page of SQL
results ... with the row key = primary key ... j/k/g/G and the arrows").

The table never holds more than `page_size` rows. Moving past the last row (down / j) asks for
the next page, past the first row for the previous one; `g` / `G` go to the first row of the
first page and the last row of the last page; `]` / `[` turn pages. The table does not query
anything itself: it posts `PagedTable.PageWanted(offset, cursor)` and its screen loads that page
in a worker and calls `show_page()`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

DEFAULT_PAGE_SIZE = 200


class PagedTable(DataTable[Any]):
    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False, id="table.down"),
        Binding("k", "cursor_up", "Up", show=False, id="table.up"),
        Binding("g", "first_row", "First row", show=False, id="table.first"),
        Binding("G", "last_row", "Last row", show=False, id="table.last"),
        Binding("right_square_bracket", "next_page", "Next page", show=False, id="table.next_page"),
        Binding("left_square_bracket", "previous_page", "Previous page", show=False, id="table.previous_page"),
    ]

    class PageWanted(Message):
        """Load the page starting at `offset`, then put the cursor on its `cursor` row
        ("first", "last" or "keep")."""

        def __init__(self, table: PagedTable, offset: int, cursor: str) -> None:
            super().__init__()
            self.table = table
            self.offset = offset
            self.cursor = cursor

        @property
        def control(self) -> PagedTable:
            return self.table

    def __init__(self, *, page_size: int = DEFAULT_PAGE_SIZE, **kwargs: Any) -> None:
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", True)
        super().__init__(**kwargs)
        self.page_size = page_size
        self.page_offset = 0
        self.page_total = 0

    # -- filling ------------------------------------------------------------------------------
    def show_page(
        self,
        rows: Iterable[tuple[Any, Sequence[Any]]],
        *,
        offset: int,
        total: int,
        cursor: str | Any = "keep",
    ) -> None:
        """Replace the rows with `rows` ((key, cells) pairs) of the page at `offset` of `total`.
        `cursor`: "first", "last", "keep" (the same row if it is still on the page, else the same
        row index: a list that grows on top or loses the highlighted row stays put), or a row key
        to select (the first row when it is not on the page)."""
        previous_row = self.cursor_row
        previous_key = self.current_key
        self.page_offset = offset
        self.page_total = total
        self.clear(columns=False)
        keys = []
        for key, cells in rows:
            self.add_row(*cells, key=str(key))
            keys.append(str(key))
        if not keys:
            return
        if cursor == "first":
            target = 0
        elif cursor == "last":
            target = len(keys) - 1
        elif cursor == "keep":
            if previous_key is not None and previous_key in keys:
                target = keys.index(previous_key)
            else:
                target = min(max(previous_row, 0), len(keys) - 1)
        else:
            target = keys.index(str(cursor)) if str(cursor) in keys else 0
        self.move_cursor(row=target, animate=False)

    @property
    def current_key(self) -> str | None:
        """The key of the row under the cursor, or None when empty."""
        return cursor_row_key(self)

    def position_text(self) -> str:
        """e.g. "201–400 of 50,000" (or "none")."""
        if self.page_total == 0 or self.row_count == 0:
            return "none"
        first = self.page_offset + 1
        last = self.page_offset + self.row_count
        return f"{first:,}–{last:,} of {self.page_total:,}"

    # -- paging -------------------------------------------------------------------------------
    def _want(self, offset: int, cursor: str) -> None:
        self.post_message(self.PageWanted(self, offset, cursor))

    def action_cursor_down(self) -> None:
        if self.row_count and self.cursor_row >= self.row_count - 1 and self.page_offset + self.row_count < self.page_total:
            self._want(self.page_offset + self.page_size, "first")
            return
        super().action_cursor_down()

    def action_cursor_up(self) -> None:
        if self.cursor_row <= 0 and self.page_offset > 0:
            self._want(max(0, self.page_offset - self.page_size), "last")
            return
        super().action_cursor_up()

    def action_first_row(self) -> None:
        if self.page_offset == 0:
            if self.row_count:
                self.move_cursor(row=0)
            return
        self._want(0, "first")

    def _last_offset(self) -> int:
        return max(0, (self.page_total - 1) // self.page_size * self.page_size) if self.page_total else 0

    def action_last_row(self) -> None:
        last = self._last_offset()
        if self.page_offset == last:
            if self.row_count:
                self.move_cursor(row=self.row_count - 1)
            return
        self._want(last, "last")

    def action_next_page(self) -> None:
        if self.page_offset + self.page_size < self.page_total:
            self._want(self.page_offset + self.page_size, "first")

    def action_previous_page(self) -> None:
        if self.page_offset > 0:
            self._want(max(0, self.page_offset - self.page_size), "first")


def cursor_row_key(table: DataTable[Any]) -> str | None:
    """The key of the row under `table`'s cursor (any DataTable), or None when it is empty."""
    if table.row_count == 0:
        return None
    try:
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
    except Exception:
        return None


def yes_no(value: bool) -> Text:
    """A boolean cell: ✔ yes / · no, readable without colour."""
    return Text("✔ yes", style="bold green") if value else Text("· no", style="dim")


def plain(value: Any) -> Text:
    """A cell showing text exactly as stored (no markup interpretation)."""
    return Text("" if value is None else str(value))
