"""CLI for the three lookup tables: `settings`, `templates`, `mappings` (SPEC §1).

Thin wrappers over services.store.settings / services.store.templates / services.store.mappings: every rule lives
in the service, the command only parses options and prints. Services are imported inside the
command bodies so `credly-console --help` stays light.
"""

from __future__ import annotations

import click

from console.cli.common import (
    LIMIT_HELP,
    OFFSET,
    ROW_ID,
    SQLITE_MAX_INT,
    echo_json,
    echo_table,
    fail,
    handle_errors,
    open_store,
    paging_note,
)

# -- settings ---------------------------------------------------------------------------------


@click.group("settings")
def settings_group() -> None:
    """Integration settings (the S table): list, get and set the eight keys.

    Values are checked before anything is written (S1, S2); a refused value exits with
    status 1 and a message naming the key, the value and the expected format.
    """


@settings_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@handle_errors
def settings_list(as_json: bool) -> None:
    """List every setting with its value and any configuration problem (S3)."""
    from services.store.settings import list_settings

    with open_store() as store:
        rows = list_settings(store)
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        row["shown"] = row["value"] if row["value"] != "" else "(blank)"
        if row["problem"]:
            row["note"] = "REQUIRED, not set" if row["value"] == "" else "INVALID stored value"
        else:
            row["note"] = "" if row["required"] else "optional"
    echo_table(rows, [("key", "KEY"), ("shown", "VALUE"), ("note", "NOTE")])
    for row in rows:
        if row["problem"]:
            click.echo(f"problem: {row['problem']}", err=True)


@settings_group.command("get")
@click.argument("key")
@handle_errors
def settings_get(key: str) -> None:
    """Print the value of KEY (an empty line when blank)."""
    from services.store.settings import get_setting

    with open_store() as store:
        click.echo(get_setting(store, key))


# ignore_unknown_options: a value such as "-5" reaches the validator (and is refused with the
# expected format) instead of being taken for an option.
@settings_group.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("key")
@click.argument("value")
@handle_errors
def settings_set(key: str, value: str) -> None:
    """Set KEY to VALUE (use "" for blank). Refused values change nothing.

    \b
    Examples:
      credly-console settings set SYNC_REVOCATION true
      credly-console settings set BATCH_SYNC_START_DATE 2024-01-31
      credly-console settings set CREDLY_INTEGRATION_MASTER ""
    """
    from services.store.settings import set_setting

    with open_store() as store:
        stored = set_setting(store, key, value)
    note = f"  (normalised from {value!r})" if stored != value else ""
    click.echo(f"{key} = {stored}{note}")


# -- templates --------------------------------------------------------------------------------


@click.group("templates")
def templates_group() -> None:
    """Credly badge templates (the T table, filled by the template sync).

    Admins may only switch a template on or off (T2); a template switched off stays off
    through later syncs until switched on again.
    """


@templates_group.command("list")
@click.option("--search", "text", default="", help="Only templates whose name or id contains this text.")
@click.option("--active/--inactive", "active", default=None, help="Only active / only inactive templates.")
@click.option("--limit", type=click.IntRange(1, SQLITE_MAX_INT), default=1000, show_default=True, help=LIMIT_HELP)
@click.option("--offset", type=OFFSET, default=0, help="Skip this many rows first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@handle_errors
def templates_list(text: str, active: bool | None, limit: int, offset: int, as_json: bool) -> None:
    """List badge templates, by name."""
    from services.store.templates import count_templates, query_templates

    with open_store() as store:
        rows = query_templates(store, text=text, active=active, limit=limit, offset=offset)
        total = count_templates(store, text=text, active=active)
    if as_json:
        echo_json(rows)
    else:
        echo_table(rows, [("template_id", "TEMPLATE ID"), ("name", "NAME"), ("is_active", "ACTIVE"),
                          ("credly_state", "CREDLY STATE"), ("dropdown_element_id", "DOCEBO OPTION")],
                   empty="(no templates; the template sync fills this table)")
    paging_note(len(rows), offset, total)


def _set_template(template_id: str, active: bool) -> None:
    from services.store.templates import set_template_active, template_usage

    with open_store() as store:
        row = set_template_active(store, template_id, active)
        used = template_usage(store, row["template_id"])
    state = "active" if active else "inactive"
    click.echo(f"template {row['template_id']} ({row['name']}) is now {state}")
    if not active and used:
        click.echo(f"note: {len(used)} mapping(s) name this template; they issue nothing while it is inactive",
                   err=True)


@templates_group.command("activate")
@click.argument("template_id")
@handle_errors
def templates_activate(template_id: str) -> None:
    """Switch the template TEMPLATE_ID on."""
    _set_template(template_id, True)


@templates_group.command("deactivate")
@click.argument("template_id")
@handle_errors
def templates_deactivate(template_id: str) -> None:
    """Switch the template TEMPLATE_ID off (the template sync will not switch it back on)."""
    _set_template(template_id, False)


# -- mappings ---------------------------------------------------------------------------------

MAPPING_TABLE = [
    ("id", "ID"), ("template_id", "TEMPLATE ID"), ("template_name", "TEMPLATE NAME"),
    ("learning_plan_id", "LEARNING PLAN"), ("import_as_external_training", "EXT. TRAINING"),
    ("certification_code", "CERTIFICATION"), ("is_active", "ACTIVE"), ("check", "CHECK"),
]


def _print_mapping(row: dict, as_json: bool, verb: str) -> None:
    if not row.get("template_known", True):
        click.echo("note: this template is not in the local template table yet; it is checked after "
                   "the template sync or by the mapping check", err=True)
    if as_json:
        echo_json(row)
        return
    sides = []
    if row["learning_plan_id"]:
        sides.append(f"learning plan {row['learning_plan_id']}")
    if row["import_as_external_training"]:
        sides.append("external training")
    if row["certification_code"]:
        sides.append(f"certification {row['certification_code']}")
    name = f" ({row['template_name']})" if row["template_name"] else ""
    state = "active" if row["is_active"] else "inactive"
    click.echo(f"{verb} mapping {row['id']}: template {row['template_id']}{name} -> {', '.join(sides)}; {state}")


@click.group("mappings")
def mappings_group() -> None:
    """Integration mappings (the M table): Credly template -> Docebo learning plan,
    external training import and/or certification code.

    A mapping needs a template and at least one Docebo side; the same (template, learning
    plan, certification code) may appear only once (M2).
    """


@mappings_group.command("list")
@click.option("--search", "text", default="", help="Only mappings whose template, learning plan or certification contains this "
                                                   "text.")
@click.option("--active/--inactive", "active", default=None, help="Only active / only inactive mappings.")
@click.option("--template", "template_id", default=None, help="Only mappings of this template id.")
@click.option(
    "--sort",
    type=click.Choice(
        [
            "id",
            "template_id",
            "template_name",
            "learning_plan_id",
            "certification_code",
            "is_active",
            "check_status",
            "updated_at",
        ]
    ),
    default="id",
    show_default=True,
    help="Sort column.",
)
@click.option("--desc", "descending", is_flag=True, help="Sort in descending order.")
@click.option("--limit", type=click.IntRange(1, SQLITE_MAX_INT), default=1000, show_default=True, help=LIMIT_HELP)
@click.option("--offset", type=OFFSET, default=0, help="Skip this many rows first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@handle_errors
def mappings_list(
    text: str, active: bool | None, template_id: str | None, sort: str, descending: bool, limit: int, offset: int, as_json: bool
) -> None:
    """List mappings."""
    from services.store.mappings import count_mappings, query_mappings

    with open_store() as store:
        rows = query_mappings(
            store, text=text, active=active, template_id=template_id, sort=sort, descending=descending, limit=limit, offset=offset
        )
        total = count_mappings(store, text=text, active=active, template_id=template_id)
    if as_json:
        echo_json(rows)
    else:
        for row in rows:
            row["check"] = (
                (row["check_status"] + (f": {row['check_message']}" if row["check_message"] else ""))
                if row["check_status"]
                else ("unchecked" if not row["template_known"] else "")
            )
        echo_table(rows, MAPPING_TABLE, empty="(no mappings)")
    paging_note(len(rows), offset, total)


@mappings_group.command("add")
@click.option("--template", "template_id", required=True, help="Credly badge template id.")
@click.option("--learning-plan", "learning_plan_id", default="", help="Docebo learning plan id (a number).")
@click.option("--external-training", is_flag=True, help="Import badges of this template as Docebo external trainings.")
@click.option("--certification", "certification_code", default="", help="Docebo certification code.")
@click.option("--inactive", is_flag=True, help="Create the mapping switched off.")
@click.option(
    "--template-name",
    default="",
    help="Label for a template not yet in the local template table (ignored when it is: the table's name is used).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the new mapping as JSON.")
@handle_errors
def mappings_add(
    template_id: str,
    learning_plan_id: str,
    external_training: bool,
    certification_code: str,
    inactive: bool,
    template_name: str,
    as_json: bool,
) -> None:
    """Add a mapping.

    \b
    Example:
      credly-console mappings add --template 0b1c...e9 --learning-plan 12 --external-training
    """
    from services.store.mappings import MappingInput, add_mapping

    data = MappingInput(
        template_id=template_id,
        learning_plan_id=learning_plan_id,
        import_as_external_training=external_training,
        certification_code=certification_code,
        is_active=not inactive,
        template_name=template_name,
    )
    with open_store() as store:
        row = add_mapping(store, data)
    _print_mapping(row, as_json, "added")


@mappings_group.command("edit")
@click.argument("mapping_id", metavar="ID", type=ROW_ID)
@click.option("--template", "template_id", default=None, help="New Credly badge template id.")
@click.option("--learning-plan", "learning_plan_id", default=None, help='New learning plan id ("" to clear).')
@click.option(
    "--external-training/--no-external-training",
    "external_training",
    default=None,
    help="Import badges as external trainings, or stop doing so.",
)
@click.option("--certification", "certification_code", default=None, help='New certification code ("" to clear).')
@click.option("--active/--inactive", "active", default=None, help="Switch the mapping on or off.")
@click.option("--template-name", default=None, help="Label for a template not yet in the local template table.")
@click.option("--json", "as_json", is_flag=True, help="Print the changed mapping as JSON.")
@handle_errors
def mappings_edit(
    mapping_id: int,
    template_id: str | None,
    learning_plan_id: str | None,
    external_training: bool | None,
    certification_code: str | None,
    active: bool | None,
    template_name: str | None,
    as_json: bool,
) -> None:
    """Change mapping ID; options not given keep their value."""
    from services.store.mappings import MappingInput, MappingNotFound, edit_mapping, get_mapping

    changes = dict(
        template_id=template_id,
        learning_plan_id=learning_plan_id,
        import_as_external_training=external_training,
        certification_code=certification_code,
        is_active=active,
        template_name=template_name,
    )
    if all(v is None for v in changes.values()):
        fail("nothing to change; give at least one option (see --help)", 2)
    with open_store() as store:
        current = get_mapping(store, mapping_id)
        if current is None:
            raise MappingNotFound(mapping_id)
        fields = {k: current[k] for k in changes}
        fields.update({k: v for k, v in changes.items() if v is not None})
        row = edit_mapping(store, mapping_id, MappingInput(**fields))
    _print_mapping(row, as_json, "changed")


@mappings_group.command("remove")
@click.argument("mapping_id", metavar="ID", type=ROW_ID)
@handle_errors
def mappings_remove(mapping_id: int) -> None:
    """Delete mapping ID."""
    from services.store.mappings import remove_mapping

    with open_store() as store:
        row = remove_mapping(store, mapping_id)
    click.echo(f"removed mapping {row['id']} (template {row['template_id']})")


@mappings_group.command("activate")
@click.argument("mapping_id", metavar="ID", type=ROW_ID)
@handle_errors
def mappings_activate(mapping_id: int) -> None:
    """Switch mapping ID on."""
    from services.store.mappings import set_mapping_active

    with open_store() as store:
        row = set_mapping_active(store, mapping_id, True)
    click.echo(f"mapping {row['id']} is now active")


@mappings_group.command("deactivate")
@click.argument("mapping_id", metavar="ID", type=ROW_ID)
@handle_errors
def mappings_deactivate(mapping_id: int) -> None:
    """Switch mapping ID off."""
    from services.store.mappings import set_mapping_active

    with open_store() as store:
        row = set_mapping_active(store, mapping_id, False)
    click.echo(f"mapping {row['id']} is now inactive")


@mappings_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True))
@click.option("--replace", is_flag=True, help="Make the table exactly the file: also remove mappings that are not in it.")
@click.option("--dry-run", is_flag=True, help="Check the file and say what would change, changing nothing.")
@handle_errors
def mappings_import(file: str, replace: bool, dry_run: bool) -> None:
    """Import mappings from a CSV FILE, all or nothing (M4).

    Header: template_id,template_name,learning_plan_id,import_as_external_training,
    certification_code,is_active (booleans true/false). A row whose template, learning plan and
    certification code match an existing mapping updates it; other rows are added; with
    --replace, mappings not in the file are removed. If any row is invalid nothing is imported
    and every bad row is listed by its spreadsheet row number (the header is row 1).
    """
    from pathlib import Path

    from services.store.mappings import import_mappings_csv

    with open_store() as store:
        result = import_mappings_csv(store, Path(file), replace=replace, dry_run=dry_run)
    prefix = "dry run, nothing changed: would import" if dry_run else "imported"
    click.echo(
        f"{prefix} {result.rows} row(s): {result.added} added, {result.updated} updated, "
        f"{result.unchanged} unchanged, {result.removed} removed"
    )


@mappings_group.command("export")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@handle_errors
def mappings_export(file: str) -> None:
    """Write every mapping to a CSV FILE ("-" for stdout), in the import format."""
    from services.store.mappings import export_csv, mappings_csv_text

    with open_store() as store:
        if file == "-":
            click.echo(mappings_csv_text(store), nl=False)
            return
        count = export_csv(store, file)
    click.echo(f"exported {count} mapping(s) to {file}")
