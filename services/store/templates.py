"""T — the Credly badge templates table (SPEC §1, T1–T3), as admins see and edit it.

Design notes: docs/design/store.md
"""

from __future__ import annotations

from services.core.errors import CredlyConsoleError
from services.store.db import Store, Where, like_pattern, utcnow

TEMPLATE_COLUMNS = (
    "template_id", "name", "is_active", "dropdown_element_id", "credly_state", "admin_deactivated",
    "created_at", "updated_at",
)


class TemplateError(CredlyConsoleError, ValueError):
    """A refused template edit (unknown id, archived template)."""


def _where(text: str, active: bool | None) -> Where:
    where = Where()
    text = text.strip()
    if text:
        where.add("(name LIKE ? ESCAPE '\\' OR template_id LIKE ? ESCAPE '\\')", like_pattern(text), like_pattern(text))
    if active is not None:
        where.add("is_active = ?", 1 if active else 0)
    return where


def _row(row: dict) -> dict:
    row = dict(row)
    row["is_active"] = bool(row["is_active"])
    row["admin_deactivated"] = bool(row["admin_deactivated"])
    return row


def query_templates(
    store: Store, *, text: str = "", active: bool | None = None, limit: int | None = 100, offset: int = 0
) -> list[dict]:
    """A page of templates ordered by name. `text` matches name or id (case-insensitive
    substring); `active` filters on `is_active`; `limit=None` returns every row."""
    rows = store.page("badge_templates", _where(text, active), order="name COLLATE NOCASE, template_id",
                      limit=limit, offset=offset, columns=", ".join(TEMPLATE_COLUMNS))
    return [_row(r) for r in rows]


def count_templates(store: Store, *, text: str = "", active: bool | None = None) -> int:
    return store.count("badge_templates", _where(text, active))


def get_template(store: Store, template_id: str) -> dict | None:
    """One template by id (exact, then case-insensitive), or None."""
    rows = list(store.db.query(
        f"SELECT {', '.join(TEMPLATE_COLUMNS)} FROM badge_templates WHERE template_id = ? "
        "OR lower(template_id) = lower(?) ORDER BY template_id = ? DESC LIMIT 1",
        [template_id, template_id, template_id],
    ))
    return _row(rows[0]) if rows else None


def set_template_active(store: Store, template_id: str, active: bool) -> dict:
    """T2: switch a template on or off. Deactivation is remembered as the admin's choice
    (`admin_deactivated`) so F1 does not undo it. Returns the updated row."""
    with store.write() as db:
        row = get_template(store, template_id.strip())
        if row is None:
            raise TemplateError(f"no badge template with id {template_id!r} in the local table "
                                "(run the template sync to fetch Credly's templates)")
        if active and row["credly_state"] != "active":
            raise TemplateError(
                f"badge template {row['template_id']} ({row['name']}) is {row['credly_state']} in "
                "Credly and cannot be activated; make it active in Credly and sync templates first"
            )
        db.execute(
            "UPDATE badge_templates SET is_active = ?, admin_deactivated = ?, updated_at = ? "
            "WHERE template_id = ?",
            (1 if active else 0, 0 if active else 1, utcnow(), row["template_id"]),
        )
    return get_template(store, row["template_id"])  # type: ignore[return-value]


def template_usage(store: Store, template_id: str) -> list[dict]:
    """The mappings that name this template (ordered by id)."""
    from services.store.mappings import MAPPING_COLUMNS, _mapping_row

    return [
        _mapping_row(r)
        for r in store.db.query(
            f"SELECT {', '.join('m.' + c for c in MAPPING_COLUMNS)}, (t.template_id IS NOT NULL) AS template_known "
            "FROM mappings m LEFT JOIN badge_templates t ON t.template_id = m.template_id "
            "WHERE lower(m.template_id) = lower(?) ORDER BY m.id",
            [template_id],
        )
    ]
