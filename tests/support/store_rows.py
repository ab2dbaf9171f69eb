"""Rows for the store tests (tables T and M) and the CLI tests that read them back."""

from __future__ import annotations

import csv
import io

from services.store.db import utcnow
from services.store.mappings import CSV_HEADER

T1 = "6b1c2d3e-0000-4000-8000-000000000001"
T2 = "6b1c2d3e-0000-4000-8000-000000000002"


def table(store) -> list[tuple]:
    return [tuple(r) for r in store.db.execute(
        "SELECT template_id, template_name, learning_plan_id, import_as_external_training, "
        "certification_code, is_active FROM mappings ORDER BY id")]


def put_template(store, template_id, name, *, active=True, state="active"):
    now = utcnow()
    store.db["badge_templates"].insert(dict(template_id=template_id, name=name, is_active=int(active),
                                            credly_state=state, created_at=now, updated_at=now))


def hundred_rows() -> list[list[str]]:
    rows = []
    for i in range(100):
        rows.append([T1 if i % 2 else T2, "", str(i + 1), "true" if i % 3 == 0 else "false",
                     f"CERT-{i}" if i % 4 == 0 else "", "false" if i % 7 == 0 else "true"])
    return rows


def to_csv(rows, header=CSV_HEADER) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()
