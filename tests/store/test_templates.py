"""services/store/templates.py: T2 and SQL paging."""

from __future__ import annotations

import pytest

from services.store.mappings import MappingInput, add_mapping
from services.store.templates import (
    TemplateError,
    count_templates,
    get_template,
    query_templates,
    set_template_active,
    template_usage,
)
from tests.support.store_rows import put_template


@pytest.fixture
def templates(store):
    for i in range(30):
        put_template(store, f"00000000-0000-0000-0000-{i:012d}", f"Badge {i:02d}", active=i % 3 != 0)
    put_template(store, "archived-1", "Old 100% badge", active=False, state="archived")
    return store


def test_query_filters_and_pages_in_sql(templates):
    page = query_templates(templates, limit=10, offset=10)
    assert [r["name"] for r in page] == [f"Badge {i:02d}" for i in range(10, 20)]
    assert count_templates(templates) == 31
    assert count_templates(templates, active=True) == 20
    assert all(r["is_active"] is True for r in query_templates(templates, active=True, limit=None))
    assert [r["name"] for r in query_templates(templates, text="badge 2")] == [f"Badge 2{i}" for i in range(10)]
    assert [r["template_id"] for r in query_templates(templates, text="100%")] == ["archived-1"]
    assert query_templates(templates, text="5%") == []  # % is literal, not a wildcard
    assert [r["name"] for r in query_templates(templates, text="000000000007")] == ["Badge 07"]


def test_deactivate_is_remembered_as_the_admins_choice(templates):
    tid = "00000000-0000-0000-0000-000000000001"
    row = set_template_active(templates, tid, False)
    assert row["is_active"] is False and row["admin_deactivated"] is True
    row = set_template_active(templates, tid.upper(), True)  # ids match case-insensitively
    assert row["is_active"] is True and row["admin_deactivated"] is False
    assert get_template(templates, tid)["is_active"] is True


def test_only_is_active_changes(templates):
    tid = "00000000-0000-0000-0000-000000000002"
    before = get_template(templates, tid)
    after = set_template_active(templates, tid, False)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {"is_active", "admin_deactivated", "updated_at"}


def test_unknown_or_archived_templates_are_refused(templates):
    with pytest.raises(TemplateError, match="no badge template"):
        set_template_active(templates, "nope", True)
    with pytest.raises(TemplateError, match="archived"):
        set_template_active(templates, "archived-1", True)
    assert get_template(templates, "archived-1")["is_active"] is False


def test_template_usage_lists_its_mappings(templates):
    tid = "00000000-0000-0000-0000-000000000004"
    add_mapping(templates, MappingInput(tid, learning_plan_id="1"))
    add_mapping(templates, MappingInput(tid, certification_code="C"))
    add_mapping(templates, MappingInput("00000000-0000-0000-0000-000000000005", learning_plan_id="1"))
    used = template_usage(templates, tid)
    assert [(m["learning_plan_id"], m["certification_code"]) for m in used] == [("1", ""), ("", "C")]
    assert all(m["template_name"] == "Badge 04" for m in used)
