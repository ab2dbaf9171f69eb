"""M — the integration mappings table (SPEC §1, M1–M4).

Design notes: docs/design/store.md
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from services.core.errors import CredlyConsoleError, FileAccessError
from services.core.files import write_atomically
from services.store.db import Store, Where, inserted_rowid, like_pattern, utcnow

CSV_HEADER: tuple[str, ...] = (
    "template_id",
    "template_name",
    "learning_plan_id",
    "import_as_external_training",
    "certification_code",
    "is_active",
)

MAPPING_COLUMNS: tuple[str, ...] = (
    "id", "template_id", "template_name", "learning_plan_id", "import_as_external_training",
    "certification_code", "is_active", "check_status", "check_message", "checked_at",
    "created_at", "updated_at",
)
SORT_COLUMNS: tuple[str, ...] = (
    "id", "template_id", "template_name", "learning_plan_id", "import_as_external_training",
    "certification_code", "is_active", "check_status", "updated_at",
)
CHECK_STATUSES: tuple[str, ...] = ("", "ok", "broken")

MAX_FIELD_LENGTH = 255
_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")


# -- errors -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldError:
    """One refused field of one mapping."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


@dataclass(frozen=True)
class RowError:
    """One refused row of a CSV file. `row` counts as a spreadsheet does: the header is row 1,
    the first data row is row 2."""

    row: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"row {self.row}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class MappingError(CredlyConsoleError, ValueError):
    """A refused mapping write (M1/M2/M4). `errors` lists every problem found."""

    def __init__(self, errors: Sequence[FieldError | RowError], summary: str = "") -> None:
        self.errors = list(errors)
        self.summary = summary
        lines = [summary] if summary else []
        lines += [str(e) for e in self.errors]
        super().__init__("\n".join(lines) if summary else "; ".join(lines))

    def details(self) -> list[str]:
        """With a summary (a CSV import), every row's problem on its own line, at most 100."""
        if not self.summary:
            return []
        shown = [str(e) for e in self.errors[:100]]
        more = len(self.errors) - len(shown)
        return shown + ([f"... and {more} more"] if more > 0 else [])

    def headline(self) -> str:
        return self.summary or super().headline()


class MappingNotFound(MappingError):
    def __init__(self, mapping_id: int) -> None:
        self.mapping_id = mapping_id
        super().__init__([FieldError("id", f"no mapping with id {mapping_id}")])


# -- input ------------------------------------------------------------------------------------


@dataclass
class MappingInput:
    """What an admin enters for one mapping. `template_name` is only used as a label while the
    template is not in the local template table."""

    template_id: str
    learning_plan_id: str = ""
    import_as_external_training: bool = False
    certification_code: str = ""
    is_active: bool = True
    template_name: str = ""


@dataclass
class _Clean:
    template_id: str
    template_name: str
    learning_plan_id: str
    import_as_external_training: bool
    certification_code: str
    is_active: bool
    template_known: bool

    @property
    def key(self) -> tuple[str, str, str]:
        # Template ids compare case-insensitively (as `_find_by_key` does).
        return (self.template_id.lower(), self.learning_plan_id, self.certification_code)


def _single_line(value: str, name: str, errors: list[FieldError]) -> str:
    if len(value) > MAX_FIELD_LENGTH:
        errors.append(FieldError(name, f"longer than {MAX_FIELD_LENGTH} characters"))
    elif any(ord(ch) < 32 for ch in value):
        errors.append(FieldError(name, "contains a line break or control character; expected one line of text"))
    return value


def _template_lookup(store: Store, template_id: str) -> tuple[str, str] | None:
    row = store.db.execute(
        "SELECT template_id, name FROM badge_templates WHERE template_id = ? OR lower(template_id) = lower(?) "
        "ORDER BY template_id = ? DESC LIMIT 1",
        (template_id, template_id, template_id),
    ).fetchone()
    return (row[0], row[1]) if row else None


def _clean(store: Store, data: MappingInput,
           templates: dict[str, tuple[str, str]] | None = None) -> tuple[_Clean | None, list[FieldError]]:
    """Validate and normalise one mapping (M2), without the duplicate check. `templates`
    (lower-case id → (id, name) of T) saves a query per row when checking a whole file."""
    errors: list[FieldError] = []
    template_id = _single_line(str(data.template_id or "").strip(), "template_id", errors)
    learning_plan_id = str(data.learning_plan_id if data.learning_plan_id is not None else "").strip()
    certification_code = _single_line(str(data.certification_code or "").strip(), "certification_code", errors)
    template_name = _single_line(str(data.template_name or "").strip(), "template_name", errors)

    if not template_id:
        errors.append(FieldError("template_id", "missing; expected the Credly badge template id"))
    elif any(ch.isspace() for ch in template_id):
        errors.append(FieldError("template_id", f"{template_id!r} contains spaces; expected a Credly badge template id"))
    elif _UUID.fullmatch(template_id):
        template_id = template_id.lower()

    if learning_plan_id:
        if not re.fullmatch(r"[0-9]+", learning_plan_id) or int(learning_plan_id) == 0:
            errors.append(FieldError(
                "learning_plan_id", f"{learning_plan_id!r} is not a Docebo learning plan id; expected a whole number such as 12"))
        else:
            learning_plan_id = str(int(learning_plan_id))

    if not (learning_plan_id or data.import_as_external_training or certification_code):
        errors.append(FieldError(
            "", "a mapping needs at least one Docebo side: a learning plan id, "
            "import as external training, or a certification code (M2)"))
    if errors:
        return None, errors

    if templates is not None:
        known = templates.get(template_id.lower())
    else:
        known = _template_lookup(store, template_id)
    if known is not None:
        template_id, template_name = known
    return _Clean(
        template_id=template_id,
        template_name=template_name,
        learning_plan_id=learning_plan_id,
        import_as_external_training=bool(data.import_as_external_training),
        certification_code=certification_code,
        is_active=bool(data.is_active),
        template_known=known is not None,
    ), []


def _find_by_key(store: Store, key: tuple[str, str, str]) -> int | None:
    row = store.db.execute(
        "SELECT id FROM mappings WHERE lower(template_id) = lower(?) AND learning_plan_id = ? "
        "AND certification_code = ? ORDER BY id LIMIT 1",
        key,
    ).fetchone()
    return row[0] if row else None


def _describe_key(key: tuple[str, str, str]) -> str:
    template_id, lp, cert = key
    return (f"template {template_id}, learning plan {lp or '(none)'}, "
            f"certification code {cert or '(none)'}")


def _mapping_row(row: dict) -> dict:
    row = dict(row)
    row["is_active"] = bool(row["is_active"])
    row["import_as_external_training"] = bool(row["import_as_external_training"])
    if "template_known" in row:
        row["template_known"] = bool(row["template_known"])
    return row


def _values(clean: _Clean) -> dict:
    return {
        "template_id": clean.template_id,
        "template_name": clean.template_name,
        "learning_plan_id": clean.learning_plan_id,
        "import_as_external_training": 1 if clean.import_as_external_training else 0,
        "certification_code": clean.certification_code,
        "is_active": 1 if clean.is_active else 0,
    }


# -- single-mapping writes (M1, M2) -----------------------------------------------------------


def get_mapping(store: Store, mapping_id: int) -> dict | None:
    rows = list(store.db.query(
        f"SELECT {', '.join('m.' + c for c in MAPPING_COLUMNS)}, (t.template_id IS NOT NULL) AS template_known "
        "FROM mappings m LEFT JOIN badge_templates t ON t.template_id = m.template_id WHERE m.id = ?",
        [int(mapping_id)],
    ))
    return _mapping_row(rows[0]) if rows else None


def _require(store: Store, mapping_id: int) -> dict:
    row = get_mapping(store, mapping_id)
    if row is None:
        raise MappingNotFound(mapping_id)
    return row


def add_mapping(store: Store, data: MappingInput) -> dict:
    """Create a mapping (M1) after the M2 checks. Returns the stored row."""
    clean, errors = _clean(store, data)
    if errors:
        raise MappingError(errors)
    assert clean is not None
    now = utcnow()
    with store.write() as db:
        existing = _find_by_key(store, clean.key)
        if existing is not None:
            raise MappingError([FieldError(
                "", f"a mapping with {_describe_key(clean.key)} already exists (id {existing}); "
                "duplicates are refused (M2)")])
        cursor = db.execute(
            "INSERT INTO mappings (template_id, template_name, learning_plan_id, import_as_external_training, "
            "certification_code, is_active, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (*_values(clean).values(), now, now),
        )
        new_id = inserted_rowid(cursor)
    return _require(store, new_id)


def edit_mapping(store: Store, mapping_id: int, data: MappingInput) -> dict:
    """Replace a mapping's fields (M1) after the M2 checks. A changed key clears the M3 check."""
    clean, errors = _clean(store, data)
    if errors:
        raise MappingError(errors)
    assert clean is not None
    with store.write() as db:
        current = _require(store, mapping_id)
        existing = _find_by_key(store, clean.key)
        if existing is not None and existing != current["id"]:
            raise MappingError([FieldError(
                "", f"a mapping with {_describe_key(clean.key)} already exists (id {existing}); "
                "duplicates are refused (M2)")])
        values = _values(clean)
        old_key = (current["template_id"], current["learning_plan_id"], current["certification_code"])
        sets = dict(values, updated_at=utcnow())
        if old_key != clean.key:
            sets.update(check_status="", check_message="", checked_at=None)
        db.execute(
            f"UPDATE mappings SET {', '.join(f'{c} = ?' for c in sets)} WHERE id = ?",
            (*sets.values(), current["id"]),
        )
    return _require(store, mapping_id)


def remove_mapping(store: Store, mapping_id: int) -> dict:
    """Delete a mapping (M1). Returns the row as it was."""
    with store.write() as db:
        row = _require(store, mapping_id)
        db.execute("DELETE FROM mappings WHERE id = ?", (row["id"],))
    return row


def set_mapping_active(store: Store, mapping_id: int, active: bool) -> dict:
    """Activate or deactivate a mapping (M1). Returns the updated row."""
    with store.write() as db:
        row = _require(store, mapping_id)
        db.execute("UPDATE mappings SET is_active = ?, updated_at = ? WHERE id = ?",
                   (1 if active else 0, utcnow(), row["id"]))
    return _require(store, mapping_id)


def record_check(store: Store, mapping_id: int, status: str, message: str = "") -> dict:
    """Record the result of M3's live check on a mapping: status "ok" or "broken" (with the
    reason in `message`), or "" to clear it. Only the check columns change (nothing silently)."""
    if status not in CHECK_STATUSES:
        raise ValueError(f"check status {status!r}; expected one of 'ok', 'broken' or ''")
    with store.write() as db:
        row = _require(store, mapping_id)
        db.execute(
            "UPDATE mappings SET check_status = ?, check_message = ?, checked_at = ? WHERE id = ?",
            (status, message, utcnow() if status else None, row["id"]),
        )
    return _require(store, mapping_id)


def refresh_template_names(store: Store) -> int:
    """Copy template names from T into the mappings that name a template in T (after F1 has
    added or renamed templates). Returns the number of mappings changed."""
    with store.write() as db:
        cursor = db.execute(
            "UPDATE mappings SET template_name = (SELECT t.name FROM badge_templates t "
            "WHERE t.template_id = mappings.template_id), updated_at = ? "
            "WHERE template_id IN (SELECT template_id FROM badge_templates) AND template_name != "
            "(SELECT t.name FROM badge_templates t WHERE t.template_id = mappings.template_id)",
            (utcnow(),),
        )
        return cursor.rowcount


# -- listing (SQL paging) ---------------------------------------------------------------------


def _where(text: str, active: bool | None, template_id: str | None) -> Where:
    where = Where()
    text = text.strip()
    if text:
        where.add(
            "(m.template_id LIKE ? ESCAPE '\\' OR m.template_name LIKE ? ESCAPE '\\' "
            "OR m.learning_plan_id LIKE ? ESCAPE '\\' OR m.certification_code LIKE ? ESCAPE '\\')",
            *[like_pattern(text)] * 4,
        )
    if active is not None:
        where.add("m.is_active = ?", 1 if active else 0)
    if template_id:
        where.add("m.template_id = ?", template_id)
    return where


def query_mappings(
    store: Store,
    *,
    text: str = "",
    active: bool | None = None,
    sort: str = "id",
    descending: bool = False,
    limit: int | None = 100,
    offset: int = 0,
    template_id: str | None = None,
) -> list[dict]:
    """A page of mappings. `text` matches template id/name, learning plan id or certification
    code (case-insensitive substring); `sort` is one of `SORT_COLUMNS`; `limit=None` = all rows.
    Each row also carries `template_known` (the template is in the local table T)."""
    if sort not in SORT_COLUMNS:
        raise ValueError(f"cannot sort mappings by {sort!r}; expected one of {', '.join(SORT_COLUMNS)}")
    direction = "DESC" if descending else "ASC"
    collate = " COLLATE NOCASE" if sort in ("template_id", "template_name", "certification_code") else ""
    order = f"m.{sort}{collate} {direction}, m.id {direction}"
    if sort == "learning_plan_id":  # numeric ids: 9 before 10; blanks last
        order = f"m.learning_plan_id = '' ASC, CAST(m.learning_plan_id AS INTEGER) {direction}, m.id {direction}"
    rows = store.page(
        "mappings m LEFT JOIN badge_templates t ON t.template_id = m.template_id", _where(text, active, template_id),
        order=order, limit=limit, offset=offset,
        columns=f"{', '.join('m.' + c for c in MAPPING_COLUMNS)}, (t.template_id IS NOT NULL) AS template_known",
    )
    return [_mapping_row(r) for r in rows]


def count_mappings(store: Store, *, text: str = "", active: bool | None = None, template_id: str | None = None) -> int:
    return store.count("mappings m", _where(text, active, template_id))


# -- CSV (M4) ---------------------------------------------------------------------------------


@dataclass
class ImportResult:
    """What an import did (or, with `dry_run`, would do)."""

    rows: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    dry_run: bool = False
    removed_ids: list[int] = field(default_factory=list)


def _read_source(source: str | Path) -> str:
    if isinstance(source, Path) or ("\n" not in source and "\r" not in source):
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise FileAccessError.of(source, exc, "read") from exc
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise MappingError([RowError(1, "", "the file is not UTF-8 text; save it as "
                                         "\"CSV UTF-8\" from the spreadsheet")],
                               "the file was not imported (nothing changed)") from None
    return source.removeprefix("\ufeff")


def _bool_cell(value: str, default: bool) -> bool | None:
    value = value.strip().lower()
    if value == "":
        return default
    if value == "true":
        return True
    if value == "false":
        return False
    return None


def parse_csv(store: Store, text: str) -> tuple[list[tuple[int, _Clean]], list[RowError]]:
    """Parse and check every row of a mappings CSV. Returns (row number, clean row) pairs and
    the per-row errors (row numbers as in a spreadsheet: the header is row 1)."""
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    records: list[list[str]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        for record in reader:
            records.append(record)
    except csv.Error as exc:
        return [], [RowError(len(records) + 1, "", f"not readable as CSV ({exc}); check the quotes on this row")]
    errors: list[RowError] = []
    expected_header = ",".join(CSV_HEADER)
    if not records or not any(c.strip() for c in records[0]):
        return [], [RowError(1, "", f"the file has no header row; expected {expected_header}")]
    header = [c.strip().lower() for c in records[0]]
    for name in header:
        if name and name not in CSV_HEADER:
            errors.append(RowError(1, name, f"unknown column; expected the header {expected_header}"))
    for name in set(header):
        if name and header.count(name) > 1:
            errors.append(RowError(1, name, "column appears more than once"))
    if "template_id" not in header:
        errors.append(RowError(1, "template_id", f"required column missing; expected the header {expected_header}"))
    if errors:
        return [], errors

    rows: list[tuple[int, _Clean]] = []
    first_row_of_key: dict[tuple[str, str, str], int] = {}
    templates: dict[str, tuple[str, str]] = {}
    for template_id, name in store.db.execute("SELECT template_id, name FROM badge_templates ORDER BY template_id DESC"):
        templates[template_id.lower()] = (template_id, name)
    for index, record in enumerate(records[1:], start=2):
        if not any(cell.strip() for cell in record):
            continue  # blank line, or a spreadsheet's empty row of commas
        if len(record) > len(header) and any(c.strip() for c in record[len(header):]):
            errors.append(RowError(index, "", f"{len(record)} cells but the header has {len(header)} columns"))
            continue
        cells = {name: (record[i] if i < len(record) else "") for i, name in enumerate(header) if name}
        row_errors: list[RowError] = []
        flags: dict[str, bool] = {}
        for column, default in (("import_as_external_training", False), ("is_active", True)):
            value = _bool_cell(cells.get(column, ""), default)
            if value is None:
                row_errors.append(RowError(index, column, f"{cells[column]!r} is not a boolean; expected true or false"))
            else:
                flags[column] = value
        data = MappingInput(
            template_id=cells.get("template_id", ""),
            template_name=cells.get("template_name", ""),
            learning_plan_id=cells.get("learning_plan_id", ""),
            import_as_external_training=flags.get("import_as_external_training", False),
            certification_code=cells.get("certification_code", ""),
            is_active=flags.get("is_active", True),
        )
        clean, field_errors = _clean(store, data, templates)
        row_errors += [RowError(index, e.field, e.message) for e in field_errors]
        if not row_errors and clean is not None:
            earlier = first_row_of_key.get(clean.key)
            if earlier is not None:
                row_errors.append(RowError(index, "", f"duplicates row {earlier} ({_describe_key(clean.key)}); "
                                           "each mapping may appear once (M2)"))
            else:
                first_row_of_key[clean.key] = index
                rows.append((index, clean))
        errors += row_errors
    return rows, errors


def import_mappings_csv(store: Store, source: str | Path, *, replace: bool = False, dry_run: bool = False) -> ImportResult:
    """M4: import a mappings CSV all-or-nothing; see the module docstring for the modes.
    `source` is a path (str or Path) or the CSV text itself (a str containing a line break).
    Raises `MappingError` with one `RowError` per problem and changes nothing if any row is bad."""
    text = _read_source(source)
    with store.write() as db:
        rows, errors = parse_csv(store, text)
        if errors:
            bad_rows = sorted({e.row for e in errors})
            raise MappingError(
                errors,
                f"the file was not imported (nothing changed): {len(bad_rows)} "
                f"row{'s' if len(bad_rows) != 1 else ''} with errors "
                "(row numbers as in a spreadsheet: the header is row 1)",
            )
        result = ImportResult(rows=len(rows), dry_run=dry_run)
        now = utcnow()
        kept: set[int] = set()
        existing: dict[tuple[str, str, str], int] = {}
        for mapping_id, template_id, lp, cert in db.execute(
            "SELECT id, template_id, learning_plan_id, certification_code FROM mappings ORDER BY id DESC"
        ):
            existing[(template_id.lower(), lp, cert)] = mapping_id  # lowest id wins, as _find_by_key
        for _, clean in rows:
            existing_id = existing.get(clean.key)
            values = _values(clean)
            if existing_id is None:
                result.added += 1
                if not dry_run:
                    cursor = db.execute(
                        "INSERT INTO mappings (template_id, template_name, learning_plan_id, "
                        "import_as_external_training, certification_code, is_active, created_at, updated_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (*values.values(), now, now),
                    )
                    kept.add(inserted_rowid(cursor))
                continue
            kept.add(existing_id)
            current = db.execute(
                "SELECT template_id, template_name, learning_plan_id, import_as_external_training, "
                "certification_code, is_active FROM mappings WHERE id = ?", (existing_id,)
            ).fetchone()
            if tuple(current) == tuple(values.values()):
                result.unchanged += 1
                continue
            result.updated += 1
            if not dry_run:
                db.execute(
                    f"UPDATE mappings SET {', '.join(f'{c} = ?' for c in values)}, updated_at = ? WHERE id = ?",
                    (*values.values(), now, existing_id),
                )
        if replace:
            all_ids = [r[0] for r in db.execute("SELECT id FROM mappings ORDER BY id").fetchall()]
            result.removed_ids = [i for i in all_ids if i not in kept]
            result.removed = len(result.removed_ids)
            if not dry_run:
                for mapping_id in result.removed_ids:
                    db.execute("DELETE FROM mappings WHERE id = ?", (mapping_id,))
    return result


def import_csv(store: Store, path_or_text: str | Path, *, replace: bool = False) -> int:
    """M4 (shared-contract name): import a mappings CSV all-or-nothing; returns the number of
    rows in the file. Raises `MappingError` with per-row errors, changing nothing."""
    return import_mappings_csv(store, path_or_text, replace=replace).rows


def mappings_csv_text(store: Store) -> str:
    """The whole table as CSV text (header first, rows by id, booleans true/false)."""
    return _csv_text(store)[0]


def _csv_text(store: Store) -> tuple[str, int]:
    count = 0
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for row in store.db.execute(
        "SELECT template_id, template_name, learning_plan_id, import_as_external_training, "
        "certification_code, is_active FROM mappings ORDER BY id"
    ):
        writer.writerow([
            row[0], row[1], row[2], "true" if row[3] else "false", row[4], "true" if row[5] else "false",
        ])
        count += 1
    return out.getvalue(), count


def export_csv(store: Store, path: str | Path) -> int:
    """Write the table to `path` as CSV (UTF-8, atomically). Returns the number of mappings."""
    text, count = _csv_text(store)
    write_atomically(Path(path), text, newline="")
    return count
