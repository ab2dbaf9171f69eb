"""services/store/mappings.py: M1, M2, M3 recording, M4 CSV import/export."""

from __future__ import annotations

import pytest

from services.store.db import Store
from services.store.mappings import (
    CSV_HEADER,
    MappingError,
    MappingInput,
    MappingNotFound,
    RowError,
    add_mapping,
    count_mappings,
    edit_mapping,
    export_csv,
    get_mapping,
    import_csv,
    import_mappings_csv,
    mappings_csv_text,
    query_mappings,
    record_check,
    refresh_template_names,
    remove_mapping,
    set_mapping_active,
)
from tests.support.store_rows import T1, T2, hundred_rows, put_template, table, to_csv

HEADER = ",".join(CSV_HEADER)

# -- M1 / M2 ----------------------------------------------------------------------------------


def test_add_edit_activate_remove(store):
    put_template(store, T1, "Python Basics")
    row = add_mapping(store, MappingInput(T1.upper(), learning_plan_id="0042", import_as_external_training=True))
    assert (row["template_id"], row["template_name"], row["learning_plan_id"]) == (T1, "Python Basics", "42")
    assert row["import_as_external_training"] is True and row["is_active"] is True
    assert row["template_known"] is True

    row = edit_mapping(store, row["id"], MappingInput(T1, certification_code="PY-1", is_active=False))
    assert (row["learning_plan_id"], row["certification_code"], row["is_active"]) == ("", "PY-1", False)
    assert set_mapping_active(store, row["id"], True)["is_active"] is True
    assert remove_mapping(store, row["id"])["id"] == row["id"]
    assert get_mapping(store, row["id"]) is None
    with pytest.raises(MappingNotFound):
        remove_mapping(store, row["id"])
    with pytest.raises(MappingNotFound):
        edit_mapping(store, 999, MappingInput(T1, learning_plan_id="1"))


@pytest.mark.parametrize(
    "data, field, words",
    [
        (MappingInput("", learning_plan_id="1"), "template_id", "missing"),
        (MappingInput("has space", learning_plan_id="1"), "template_id", "spaces"),
        (MappingInput(T1), "", "at least one Docebo side"),
        (MappingInput(T1, learning_plan_id="LP-12"), "learning_plan_id", "whole number"),
        (MappingInput(T1, learning_plan_id="0"), "learning_plan_id", "whole number"),
        (MappingInput(T1, certification_code="a\nb"), "certification_code", "one line"),
    ],
)
def test_invalid_mappings_are_refused_with_field_and_reason(store, data, field, words):
    with pytest.raises(MappingError) as info:
        add_mapping(store, data)
    assert [e.field for e in info.value.errors] == [field]
    assert words in str(info.value)
    assert count_mappings(store) == 0


def test_duplicates_of_the_m2_key_are_refused(store):
    add_mapping(store, MappingInput(T1, learning_plan_id="1", certification_code="C"))
    with pytest.raises(MappingError, match=r"already exists \(id 1\)"):
        add_mapping(store, MappingInput(T1.upper(), learning_plan_id="01", certification_code="C",
                                        import_as_external_training=True))
    other = add_mapping(store, MappingInput(T1, learning_plan_id="1"))  # different key: fine
    with pytest.raises(MappingError, match="already exists"):
        edit_mapping(store, other["id"], MappingInput(T1, learning_plan_id="1", certification_code="C"))
    assert edit_mapping(store, other["id"], MappingInput(T1, learning_plan_id="1", is_active=False))["is_active"] is False


def test_unknown_template_is_accepted_with_its_label_and_named_from_t_once_synced(store):
    row = add_mapping(store, MappingInput(T2, learning_plan_id="3", template_name="Label I typed"))
    assert (row["template_name"], row["template_known"]) == ("Label I typed", False)
    put_template(store, T2, "Real Name")
    assert refresh_template_names(store) == 1
    assert get_mapping(store, row["id"])["template_name"] == "Real Name"
    assert get_mapping(store, row["id"])["template_known"] is True
    assert refresh_template_names(store) == 0


def test_query_filters_sorts_and_pages(store):
    for i in range(1, 26):
        add_mapping(store, MappingInput(T1 if i % 2 else T2, learning_plan_id=str(i), is_active=i % 5 != 0,
                                        certification_code=f"CERT-{i}"))
    assert count_mappings(store) == 25 and count_mappings(store, active=False) == 5
    ids = [r["learning_plan_id"] for r in query_mappings(store, sort="learning_plan_id", descending=True, limit=3)]
    assert ids == ["25", "24", "23"]
    page = query_mappings(store, sort="learning_plan_id", limit=5, offset=5)
    assert [r["learning_plan_id"] for r in page] == ["6", "7", "8", "9", "10"]
    assert {r["template_id"] for r in query_mappings(store, template_id=T2, limit=None)} == {T2}
    assert [r["learning_plan_id"] for r in query_mappings(store, text="cert-1", active=True, limit=None)] == \
        ["1", "11", "12", "13", "14", "16", "17", "18", "19"]
    assert count_mappings(store, text=T2[-6:]) == 12  # matches template ids too
    with pytest.raises(ValueError, match="cannot sort"):
        query_mappings(store, sort="id; DROP TABLE mappings")


def test_record_check_changes_only_the_check_columns(store):
    row = add_mapping(store, MappingInput(T1, learning_plan_id="1"))
    checked = record_check(store, row["id"], "broken", "learning plan 1 not found in Docebo")
    assert (checked["check_status"], checked["check_message"]) == ("broken", "learning plan 1 not found in Docebo")
    assert checked["checked_at"]
    assert {k for k in row if row[k] != checked[k]} == {"check_status", "check_message", "checked_at"}
    with pytest.raises(ValueError):
        record_check(store, row["id"], "weird")
    # A changed key clears the check; a flag change keeps it.
    kept = edit_mapping(store, row["id"], MappingInput(T1, learning_plan_id="1", is_active=False))
    assert kept["check_status"] == "broken"
    cleared = edit_mapping(store, row["id"], MappingInput(T1, learning_plan_id="2"))
    assert cleared["check_status"] == "" and cleared["checked_at"] is None


# -- M4 CSV -----------------------------------------------------------------------------------


def test_100_rows_with_one_bad_row_import_nothing_and_name_the_row(store, tmp_path):
    rows = hundred_rows()
    rows[56][2] = "LP-57"  # the 57th data row = spreadsheet row 58
    path = tmp_path / "m.csv"
    path.write_text(to_csv(rows))
    with pytest.raises(MappingError) as info:
        import_csv(store, path)
    assert info.value.errors == [RowError(58, "learning_plan_id", info.value.errors[0].message)]
    assert "'LP-57'" in info.value.errors[0].message and "whole number" in info.value.errors[0].message
    assert "row 58: learning_plan_id" in str(info.value)
    assert "header is row 1" in str(info.value) and "nothing changed" in str(info.value)
    assert count_mappings(store) == 0


def test_a_valid_100_row_file_imports_and_export_reimports_identically(store, tmp_path):
    put_template(store, T1, "Known Template")
    path = tmp_path / "m.csv"
    path.write_text(to_csv(hundred_rows()))
    assert import_csv(store, str(path)) == 100
    assert count_mappings(store) == 100
    assert {r[1] for r in table(store) if r[0] == T1} == {"Known Template"}
    first = table(store)

    out = tmp_path / "out" / "export.csv"
    assert export_csv(store, out) == 100
    exported = out.read_bytes().decode("utf-8")
    assert exported.splitlines()[0] == HEADER

    with Store(tmp_path / "other.db") as other:  # into an empty table
        put_template(other, T1, "Known Template")
        assert import_csv(other, out) == 100
        assert table(other) == first
    result = import_mappings_csv(store, out, replace=True)  # into the same table
    assert (result.added, result.updated, result.unchanged, result.removed) == (0, 0, 100, 0)
    assert table(store) == first
    assert mappings_csv_text(store) == exported


def test_every_bad_row_is_reported_with_its_spreadsheet_row(store):
    text = to_csv([
        [T1, "", "1", "true", "", "true"],           # row 2 ok
        ["", "", "1", "", "", ""],                   # row 3 no template
        [T1, "", "", "maybe", "", ""],               # row 4 bad boolean (and no side)
        [T1, "", "1", "TRUE", "", "TRUE"],           # row 5 duplicate of row 2 (booleans any case)
        [],                                          # row 6 blank: skipped
        [T2, "", "", "", "", "yes"],                 # row 7 bad is_active
        [T2, "", "", "", "C", "", "extra"],          # row 8 too many cells
    ])
    with pytest.raises(MappingError) as info:
        import_csv(store, text)
    by_row = {}
    for error in info.value.errors:
        by_row.setdefault(error.row, []).append(error)
    assert sorted(by_row) == [3, 4, 5, 7, 8]
    assert "missing" in str(by_row[3][0])
    assert any(e.field == "import_as_external_training" and "'maybe'" in e.message for e in by_row[4])
    assert "duplicates row 2" in str(by_row[5][0])
    assert by_row[7][0].field == "is_active"
    assert "7 cells" in str(by_row[8][0])
    assert "5 rows with errors" in str(info.value)
    assert count_mappings(store) == 0


def test_header_problems_are_row_1(store):
    with pytest.raises(MappingError) as info:
        import_csv(store, "template,learning_plan_id\nx,1\n")
    assert {(e.row, e.field) for e in info.value.errors} == {(1, "template"), (1, "template_id")}
    with pytest.raises(MappingError, match="no header"):
        import_csv(store, "\n\n")


def test_import_updates_by_key_and_replace_makes_the_table_the_file(store):
    add_mapping(store, MappingInput(T1, learning_plan_id="1"))
    add_mapping(store, MappingInput(T2, certification_code="KEEP"))
    text = to_csv([[T1, "", "1", "true", "", "false"], [T1, "", "", "", "NEW", ""]])
    result = import_mappings_csv(store, text)
    assert (result.added, result.updated, result.removed) == (1, 1, 0)
    assert table(store) == [(T1, "", "1", 1, "", 0), (T2, "", "", 0, "KEEP", 1), (T1, "", "", 0, "NEW", 1)]
    assert get_mapping(store, 1)["id"] == 1  # updated in place: ids of matching rows survive

    plan = import_mappings_csv(store, text, replace=True, dry_run=True)
    assert (plan.removed, plan.removed_ids) == (1, [2])
    assert count_mappings(store) == 3  # dry run changed nothing
    import_mappings_csv(store, text, replace=True)
    assert table(store) == [(T1, "", "1", 1, "", 0), (T1, "", "", 0, "NEW", 1)]


def test_semicolon_files_bom_and_missing_optional_columns(store, tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufefftemplate_id;learning_plan_id;certification_code\r\n"
                     f"{T1};7;\r\n;;\r\n{T2};;CÉRT-é\r\n".encode())
    assert import_csv(store, path) == 2
    assert table(store) == [(T1, "", "7", 0, "", 1), (T2, "", "", 0, "CÉRT-é", 1)]


def test_quoting_errors_and_non_utf8_are_reported(store, tmp_path):
    with pytest.raises(MappingError) as info:
        import_csv(store, f'{HEADER}\n{T1},"unterminated,1,,,\n')
    assert info.value.errors[0].row == 2
    path = tmp_path / "latin1.csv"
    path.write_bytes(f"{HEADER}\n{T1},Caf\xe9,1,,,\n".encode("latin-1"))
    with pytest.raises(MappingError, match="UTF-8"):
        import_csv(store, path)


def test_names_and_labels_with_commas_and_quotes_round_trip(store, tmp_path):
    add_mapping(store, MappingInput(T1, learning_plan_id="5", template_name='Data, "Advanced"'))
    before = table(store)
    export_csv(store, tmp_path / "x.csv")
    with Store(tmp_path / "y.db") as other:
        import_csv(other, tmp_path / "x.csv")
        assert table(other) == before
