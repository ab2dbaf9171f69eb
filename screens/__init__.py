"""The console's screens: one section screen or modal per module. Screens import services, never
the `console` package (DESIGN.md layering)."""

from __future__ import annotations


def __getattr__(name: str):
    # Lazy: importing `screens` must not import Textual (services tests import nothing from here,
    # but the keymap check in console.app asks for these lists).
    if name == "MODAL_CLASSES":
        from screens.confirm import ConfirmScreen
        from screens.csv_export import CsvExportScreen
        from screens.csv_import import CsvImportScreen
        from screens.error import ErrorScreen
        from screens.mapping_form import MappingForm
        from screens.plan_review import PlanReviewScreen

        return [ErrorScreen, ConfirmScreen, MappingForm, CsvImportScreen, CsvExportScreen, PlanReviewScreen]
    if name == "WIDGET_CLASSES":
        from screens.widgets.paged_table import PagedTable

        return [PagedTable]
    raise AttributeError(name)
