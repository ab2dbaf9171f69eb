"""The mapping form: add or edit one M row (SPEC §1, M1–M3) in a typed modal.

Design notes: docs/design/console.md
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.suggester import SuggestFromList
from textual.validation import ValidationResult, Validator
from textual.widgets import Button, Footer, Input, Label, Static, Switch

from screens.base import ConsoleModal, client
from services.store.db import Store
from services.store.mappings import MappingError, MappingInput

_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
FIELDS = ("template_id", "learning_plan_id", "certification_code")


class TemplateCatalog:
    """The templates of T, for picking by name (case-insensitive) or id."""

    def __init__(self, rows: list[tuple[str, str, bool]] | None = None) -> None:
        self.rows = rows or []
        self.by_name = {name.lower(): (tid, name, active) for tid, name, active in self.rows}
        self.by_id = {tid.lower(): (tid, name, active) for tid, name, active in self.rows}

    @property
    def names(self) -> list[str]:
        return [name for _, name, _ in self.rows]

    def resolve(self, text: str) -> tuple[str, str, bool] | None:
        """(template_id, name, is_active) for a name or id in T, else None."""
        key = text.strip().lower()
        return self.by_name.get(key) or self.by_id.get(key)


class FormFieldValidator(Validator):
    """A field of the form, checked as you type: blank is `blank_message` (an error) or fine
    (None); otherwise `problem(text)` says what is wrong with the stripped text, or None. The
    form gives what it has loaded meanwhile (the template catalog, Docebo's ids)."""

    blank_message: str | None = None

    def __init__(self, form: MappingForm) -> None:
        super().__init__()
        self.form = form

    def validate(self, value: str) -> ValidationResult:
        text = value.strip()
        problem = self.blank_message if not text else self.problem(text)
        return self.failure(problem) if problem else self.success()

    def problem(self, text: str) -> str | None:
        raise NotImplementedError


class TemplateValidator(FormFieldValidator):
    blank_message = "pick a badge template by name (type to see suggestions)"

    def problem(self, text: str) -> str | None:
        if self.form.catalog.resolve(text) is not None:
            return None
        if _UUID.fullmatch(text):
            return None  # not in T yet: accepted, flagged by the note and by M3
        if not self.form.catalog.rows:
            return "the template table is empty: run the template sync (F1), or enter a Credly template id"
        return f"no badge template named {text!r} in the template table"


class LearningPlanValidator(FormFieldValidator):
    def problem(self, text: str) -> str | None:
        if not re.fullmatch(r"[0-9]+", text) or int(text) == 0:
            return f"{text!r} is not a Docebo learning plan id; expected a whole number such as 12"
        known = self.form.known_learning_plans
        if known is not None and str(int(text)) not in known:
            return f"Docebo has no learning plan with id {int(text)}"
        return None


class CertificationValidator(FormFieldValidator):
    def problem(self, text: str) -> str | None:
        if len(text) > 255 or any(ord(ch) < 32 for ch in text):
            return "expected one line of text (at most 255 characters)"
        known = self.form.known_certifications
        if known is not None and text not in known:
            return f"Docebo has no certification with code {text!r}"
        return None


def show_error(target: Static, message: str) -> None:
    """An inline error under its field; the line takes no room while there is none."""
    target.update(Text("✘ " + message) if message else "")
    target.display = bool(message)


def _lp_id(item: dict) -> str:
    for key in ("learning_plan_id", "id_path", "id"):
        if item.get(key) not in (None, ""):
            return str(item[key])
    return ""


class MappingForm(ConsoleModal[dict | None]):
    """Add (`mapping=None`) or edit a mapping. Dismisses with the saved row, or None."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="mapping_form.save", priority=True),
        Binding("escape", "cancel", "Cancel", id="mapping_form.cancel"),
    ]

    def __init__(self, ctx: Any, *, save: Callable[[Store, MappingInput], dict], mapping: dict | None = None) -> None:
        super().__init__(ctx)
        self.mapping = mapping
        self.save_mapping = save
        self.catalog = TemplateCatalog()
        self.known_learning_plans: set[str] | None = None
        self.known_certifications: set[str] | None = None

    # -- layout -------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Footer()  # the dialog's own keys (the screen's below would mislead)
        m = self.mapping or {}
        title = f"Edit mapping #{m['id']}" if m else "New mapping"
        with Vertical(id="mapping-dialog", classes="dialog"):
            yield Label(title, classes="dialog-title")
            yield from self._field("Badge template", "template", m.get("template_name") or m.get("template_id", ""),
                                   "template name (type for suggestions) or Credly template id", TemplateValidator(self))
            yield Static("", id="template-note", classes="field-note")
            yield Static("", id="template_id-error", classes="inline-error")
            yield from self._field("Learning plan id", "learning_plan_id", m.get("learning_plan_id", ""),
                                   "e.g. 12 (blank: none)", LearningPlanValidator(self))
            yield Static("", id="learning_plan_id-error", classes="inline-error")
            yield from self._field("Certification code", "certification_code", m.get("certification_code", ""),
                                   "e.g. CERT-SEC-1 (blank: none)", CertificationValidator(self))
            yield Static("", id="certification_code-error", classes="inline-error")
            with Horizontal(classes="switches"):
                yield Switch(value=bool(m.get("import_as_external_training", False)), id="external_training")
                yield Label("Import badges as external training")
                yield Switch(value=bool(m.get("is_active", True)), id="is_active")
                yield Label("Active")
            yield Static("", id="form-error", classes="inline-error")
            yield Static("", id="live-status", classes="help-line")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", id="save", variant="primary")
                yield Button("Cancel", id="cancel")

    @staticmethod
    def _field(label: str, field_id: str, value: str, placeholder: str, validator: FormFieldValidator) -> ComposeResult:
        with Horizontal(classes="form-row"):
            yield Label(label, classes="form-label")
            yield Input(value=value, id=field_id, placeholder=placeholder, validators=[validator],
                        valid_empty=validator.blank_message is None)

    def on_mount(self) -> None:
        for error in self.query(".inline-error"):
            error.display = False
        self.query_one("#template-note").display = False
        self.query_one("#template", Input).focus()
        self._load_catalog()
        if self.ctx.has_client("docebo"):
            self._load_docebo()
        else:
            self._live_status("No Docebo connection: learning plan ids and certification codes are checked "
                              "for form only (M3's check verifies them later).")

    def _live_status(self, text: str, style: str = "dim") -> None:
        self.query_one("#live-status", Static).update(Text(text, style=style))

    # -- background loads ---------------------------------------------------------------------
    def _load_catalog(self) -> None:
        def job(store: Store) -> list[tuple[str, str, bool]]:
            return [(r[0], r[1], bool(r[2])) for r in store.db.execute(
                "SELECT template_id, name, is_active FROM badge_templates ORDER BY name COLLATE NOCASE")]

        def done(rows: list[tuple[str, str, bool]]) -> None:
            self.catalog = TemplateCatalog(rows)
            field = self.query_one("#template", Input)
            field.suggester = SuggestFromList(self.catalog.names, case_sensitive=False)
            if self.mapping and self.mapping.get("template_id"):
                hit = self.catalog.resolve(self.mapping["template_id"])
                if hit is not None and field.value.strip().lower() in ("", self.mapping["template_id"].lower()):
                    field.value = hit[1]
            self._revalidate()

        self.background(job, done, group="form-catalog", description="Loading the badge templates")

    def _load_docebo(self) -> None:
        ctx = self.ctx
        self._live_status("Loading learning plans and certifications from Docebo…")

        async def job(store: Store) -> tuple[set[str] | None, set[str] | None, str]:
            try:
                async with client(ctx, "docebo") as docebo:
                    plans = {_lp_id(p) async for p in docebo.iter_learning_plans()}
                    certs = {str(c.get("code", "")) async for c in docebo.iter_certifications()}
            except Exception as exc:  # noqa: BLE001 - shown, and the form still works
                return None, None, f"{type(exc).__name__}: {exc}"
            return {p for p in plans if p}, {c for c in certs if c}, ""

        def done(result: tuple[set[str] | None, set[str] | None, str]) -> None:
            plans, certs, error = result
            if error:
                self._live_status(f"Docebo could not be reached, ids are checked for form only: {error}",
                                  style="yellow")
                return
            self.known_learning_plans, self.known_certifications = plans, certs
            self._live_status(f"Checked against Docebo: {len(plans or ())} learning plans, "
                              f"{len(certs or ())} certifications.")
            self._revalidate()

        self.background_async(job, done, group="form-docebo", description="Loading from Docebo")

    # -- validation ---------------------------------------------------------------------------
    def _revalidate(self) -> None:
        for name in ("template", *FIELDS[1:]):
            field = self.query_one(f"#{name}", Input)
            if field.value:
                self._show_result(field, field.validate(field.value))
        self._template_note()

    def _error_widget(self, input_id: str) -> Static:
        return self.query_one(f"#{'template_id' if input_id == 'template' else input_id}-error", Static)

    def _show_result(self, field: Input, result: ValidationResult | None) -> None:
        target = self._error_widget(field.id or "")
        if result is None or result.is_valid:
            show_error(target, "")
        else:
            show_error(target, result.failure_descriptions[0])

    def on_input_changed(self, event: Input.Changed) -> None:
        self._show_result(event.input, event.validation_result)
        if event.input.id == "template":
            self._template_note()
        show_error(self.query_one("#form-error", Static), "")

    def _template_note(self) -> None:
        text = self.query_one("#template", Input).value.strip()
        note = self.query_one("#template-note", Static)
        hit = self.catalog.resolve(text) if text else None
        note.display = True
        if hit is not None:
            tid, _, active = hit
            note.update(Text(f"{tid}" + ("" if active else "  (inactive template)"), style="dim"))
        elif _UUID.fullmatch(text):
            note.update(Text("not in the template table yet: saved as is, checked by M3 later", style="yellow"))
        else:
            note.update("")
            note.display = False

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    # -- save ---------------------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def form_input(self) -> MappingInput | None:
        """The typed MappingInput, or None after showing every field's error inline (the cursor
        goes to the first field to fix)."""
        invalid: list[Input] = []
        for name in ("template", *FIELDS[1:]):
            field = self.query_one(f"#{name}", Input)
            result = field.validate(field.value)
            self._show_result(field, result)
            if result is not None and not result.is_valid:
                invalid.append(field)
        external = self.query_one("#external_training", Switch).value
        plan = self.query_one("#learning_plan_id", Input).value.strip()
        cert = self.query_one("#certification_code", Input).value.strip()
        if not (plan or cert or external):
            show_error(self.query_one("#form-error", Static),
                       "a mapping needs at least one Docebo side: a learning plan id, import as external "
                       "training, or a certification code (M2)")
            invalid.append(self.query_one("#learning_plan_id", Input))
        if invalid:
            invalid[0].focus()
            return None
        text = self.query_one("#template", Input).value.strip()
        hit = self.catalog.resolve(text)
        return MappingInput(
            template_id=hit[0] if hit else text,
            template_name=hit[1] if hit else "",
            learning_plan_id=plan,
            import_as_external_training=external,
            certification_code=cert,
            is_active=self.query_one("#is_active", Switch).value,
        )

    def action_save(self) -> None:
        data = self.form_input()
        if data is None:
            return  # errors are shown inline; nothing is saved
        save = self.save_mapping

        def job(store: Store) -> tuple[dict | None, list[Any]]:
            try:
                return save(store, data), []
            except MappingError as exc:
                return None, list(exc.errors)

        def done(result: tuple[dict | None, list[Any]]) -> None:
            row, errors = result
            if row is not None:
                self.dismiss(row)
                return
            general = []
            for error in errors:
                if getattr(error, "field", "") in FIELDS:
                    show_error(self.query_one(f"#{error.field}-error", Static), error.message)
                else:
                    general.append(str(error))
            if general:
                show_error(self.query_one("#form-error", Static), "\n✘ ".join(general))

        self.background(job, done, group="form-save", description="Saving the mapping")
