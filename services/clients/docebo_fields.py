"""Reading Docebo's course additional fields and dates as the API returns them (a field's name
and options in any of its translations; dates with or without a time)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from dateutil import parser as dateparser

# -------------------------------------------------------------------------------------------
# helpers for field / option dicts


def field_name(field: Mapping[str, Any]) -> str | None:
    """The display name of a course additional field (`name.value`, a plain `name`, or the
    english translation)."""
    name = field.get("name")
    if isinstance(name, dict):
        value = name.get("value")
        if value:
            return str(value)
        values = name.get("values")
        if isinstance(values, dict):
            return str(values.get("english") or next(iter(values.values()), "") or "") or None
        if isinstance(values, list) and values:
            return str(values[0])
    elif isinstance(name, str) and name:
        return name
    translations = field.get("translations")
    if isinstance(translations, dict) and translations.get("english"):
        return str(translations["english"])
    title = field.get("title")
    return str(title) if title else None


def field_options(field: Mapping[str, Any]) -> list[dict]:
    options = field.get("options")
    if options is None:
        options = field.get("dropdown_options")
    return [o for o in options or [] if isinstance(o, dict)]


def option_label(option: Mapping[str, Any]) -> str:
    label = option.get("label")
    if isinstance(label, str):
        return label
    translations = option.get("translations") or (label if isinstance(label, dict) else None)
    if isinstance(translations, dict):
        return str(translations.get("english") or next(iter(translations.values()), ""))
    return str(label or "")


def _option_id(value: Any) -> Any:
    """Option ids are ints on the wire; the store keeps them as strings (T3)."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return value


def _same_time(a: Any, b: Any) -> bool:
    """Same instant for two Docebo / ISO date strings (to the second); same day if either has
    no time; plain equality when unparseable."""
    if a == b:
        return True
    pa, pb = _parse(a), _parse(b)
    if pa is None or pb is None:
        return False
    if _date_only(a) or _date_only(b):
        return pa.date() == pb.date()
    return abs((pa - pb).total_seconds()) < 1.0


def _date_only(value: Any) -> bool:
    return isinstance(value, str) and len(value.strip()) == 10


def _parse(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value.strip() or value.startswith("0000"):
        return None
    try:
        parsed = dateparser.parse(value)
    except (ValueError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)
