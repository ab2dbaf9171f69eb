"""Helpers shared by the CLI commands: error → exit status, the store, tables and JSON.

Design notes: docs/design/console.md
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

import click

from services.core.errors import (  # noqa: F401  (the exit statuses, re-exported for the commands)
    EXIT_BUSY,
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    CredlyConsoleError,
    exit_code_of,
    is_expected,
)

F = TypeVar("F", bound=Callable[..., Any])

# SQLite integers are 64-bit: a larger id, limit or offset is refused as bad input (exit 2)
# before it reaches the database.
SQLITE_MAX_INT = 2**63 - 1
ROW_ID = click.IntRange(1, SQLITE_MAX_INT)
OFFSET = click.IntRange(0, SQLITE_MAX_INT)
LIMIT_HELP = "Show at most this many rows (paging is done in the database)."


def fail(message: str, code: int = EXIT_FAILURE) -> None:
    """Print `error: message` on stderr and stop with `code`."""
    click.echo(f"error: {message}", err=True)
    raise click.exceptions.Exit(code)


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_CONTROL_KEEP_LINES = {c: s for c, s in _CONTROL.items() if c not in (0x09, 0x0A)}


def terminal_safe(text: str, *, lines: bool = False) -> str:
    """`text` with its control characters shown as `\\xNN`: what a webhook, an API or a CSV put
    into a value can never move the cursor, retitle or clear the admin's terminal. `lines`
    keeps newlines and tabs (a notification's body)."""
    return text.translate(_CONTROL_KEEP_LINES if lines else _CONTROL)


def report_expected(exc: BaseException) -> NoReturn:
    """Print an expected error (`is_expected(exc)`) as its `error:` line (and detail lines) and
    exit with its status."""
    assert isinstance(exc, CredlyConsoleError)
    click.echo(f"error: {terminal_safe(exc.headline())}", err=True)
    for line in exc.details():
        click.echo(f"  {terminal_safe(line)}", err=True)
    raise click.exceptions.Exit(exit_code_of(exc)) from None


def handle_errors(func: F) -> F:
    """Turn every expected error (`services.core.errors.is_expected`) into an `error:` line on
    stderr (and its detail lines) and the error's own exit status; anything else is a bug and
    keeps its traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            if not is_expected(exc):
                raise
            report_expected(exc)

    return wrapper  # type: ignore[return-value]


class ExpectedErrorsGroup(click.Group):
    """The root group: an expected error that a command did not handle itself (a new command
    without `handle_errors`, a store opened mid-command) still ends as one `error:` line and its
    exit status, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if not is_expected(exc):
                raise
            report_expected(exc)


def open_store():
    """The store at `database_path()` (opened, migrated). Use as a context manager."""
    from services.core.config import database_path
    from services.store.db import Store

    return Store(database_path())


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def echo_table(rows: Sequence[dict], columns: Sequence[tuple[str, str]], *, empty: str = "(none)") -> None:
    """Plain aligned columns: `columns` is (key, heading) pairs. Booleans print as true/false."""
    if not rows:
        click.echo(empty)
        return

    def cell(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        return "" if value is None else terminal_safe(str(value))

    grid = [[heading for _, heading in columns]] + [[cell(r.get(k)) for k, _ in columns] for r in rows]
    widths = [max(len(line[i]) for line in grid) for i in range(len(columns))]
    for line in grid:
        click.echo("  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip())


def paging_note(shown: int, offset: int, total: int) -> None:
    """Tell (on stderr) that a list was cut, so scripts reading stdout are not misled."""
    if offset + shown < total or offset > 0:
        first = offset + 1 if shown else offset
        click.echo(f"showing {first}-{offset + shown} of {total}; use --offset/--limit for more", err=True)

