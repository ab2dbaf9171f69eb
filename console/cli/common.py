"""Helpers shared by the CLI commands: error → exit status, the store, tables and JSON.

Design notes: docs/design/console.md
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_FAILURE) -> None:
    """Print `error: message` on stderr and stop with `code`."""
    click.echo(f"error: {message}", err=True)
    raise click.exceptions.Exit(code)


def handle_errors(func: F) -> F:
    """Turn the services' refusals into an `error:` line on stderr and the exit status above."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from services.core.config import ConfigError
        from services.core.secrets import NoKeyringError, UnknownSecretError
        from services.store.db import StoreError
        from services.store.mappings import MappingError
        from services.store.settings import SettingError
        from services.store.templates import TemplateError

        try:
            return func(*args, **kwargs)
        except (ConfigError, StoreError) as exc:
            fail(str(exc), EXIT_USAGE)
        except MappingError as exc:
            if exc.summary:
                click.echo(f"error: {exc.summary}", err=True)
                shown = exc.errors[:100]
                for error in shown:
                    click.echo(f"  {error}", err=True)
                if len(exc.errors) > len(shown):
                    click.echo(f"  ... and {len(exc.errors) - len(shown)} more", err=True)
                raise click.exceptions.Exit(EXIT_FAILURE) from None
            fail(str(exc))
        except (SettingError, TemplateError, NoKeyringError, UnknownSecretError) as exc:
            fail(str(exc))

    return wrapper  # type: ignore[return-value]


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
        return "" if value is None else str(value)

    grid = [[heading for _, heading in columns]] + [[cell(r.get(k)) for k, _ in columns] for r in rows]
    widths = [max(len(line[i]) for line in grid) for i in range(len(columns))]
    for line in grid:
        click.echo("  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip())


def paging_note(shown: int, offset: int, total: int) -> None:
    """Tell (on stderr) that a list was cut, so scripts reading stdout are not misled."""
    if offset + shown < total or offset > 0:
        first = offset + 1 if shown else offset
        click.echo(f"showing {first}-{offset + shown} of {total}; use --offset/--limit for more", err=True)

