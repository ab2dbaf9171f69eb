"""What every console screen shares: the context, background work, and the one place where a
failed worker becomes something the admin sees.

Design notes: docs/design/console.md
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.signal import Signal
from textual.widgets import Footer, Header, Input, Static, TextArea
from textual.worker import Worker, WorkerState, get_current_worker

from screens.widgets.section_bar import SectionBar
from services.clients.budget import caller_class
from services.core.errors import is_expected
from services.store.db import Store

if TYPE_CHECKING:  # pragma: no cover
    from services.appcontext import AppContext

T = TypeVar("T")

def is_expected_error(exc: BaseException) -> bool:
    """True for an error the services explain (a toast); False for a bug (the error modal with
    its traceback). The same rule as the CLI's (`services.core.errors.is_expected`)."""
    return is_expected(exc)


def subscribe_health(screen: Screen[Any], callback: Callable[[dict[str, dict]], Any]) -> None:
    """Call `callback` whenever the app records a connection test (the console app's
    `health_changed` Signal); the subscription ends with the screen."""
    signal: Signal[dict[str, dict]] = screen.app.health_changed  # type: ignore[attr-defined]
    signal.subscribe(screen, callback)


def describe_error(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


def report_worker_failure(app: App[Any], worker: Worker[Any]) -> None:
    """The one route from a failed worker to the screen: toast or error modal (see module doc)."""
    exc = worker.error
    if exc is None:  # pragma: no cover - ERROR always carries the exception
        return
    what = worker.description or worker.name or "background task"
    if is_expected_error(exc):
        app.notify(describe_error(exc), title=f"{what} failed", severity="error", markup=False, timeout=10)
        return
    from screens.error import ErrorScreen

    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    app.push_screen(ErrorScreen(f"{what} failed", f"{type(exc).__name__}: {describe_error(exc)}", details))


class WorkerResult(Message):
    """A background job's result, delivered on the UI thread to the node that started it."""

    def __init__(self, worker: Worker[Any], then: Callable[[Any], Any], result: Any) -> None:
        super().__init__()
        self.worker = worker
        self.then = then
        self.result = result


@contextlib.asynccontextmanager
async def client(ctx: AppContext, service: str) -> AsyncIterator[Any]:
    """A fresh API client of `service` for the current event loop, closed on exit. Its calls are the
    console's interactive ones: they go ahead of batch calls (issue 15 point 2)."""
    api = ctx.make_client(service)
    try:
        with caller_class("console"):
            yield api
    finally:
        await api.aclose()


@contextlib.asynccontextmanager
async def flow_context(ctx: AppContext, store: Store) -> AsyncIterator[Any]:
    """A `FlowContext` over `store` with a fresh client of each available service (None for a
    service this console has no connection to: the flow then ends with that reason)."""
    from services.flows import FlowContext

    apis: dict[str, Any] = {}
    try:
        for service in ("credly", "docebo"):
            if ctx.has_client(service):
                apis[service] = ctx.make_client(service)
        yield FlowContext(store=store, credly=apis.get("credly"), docebo=apis.get("docebo"))
    finally:
        for api in apis.values():
            await api.aclose()


def flows_available() -> bool:
    """True once the flows package is installed in this build (it lands after the console)."""
    import importlib.util

    return importlib.util.find_spec("services.flows") is not None


class BackgroundMixin:
    """`background()` / `background_async()` and the failed-worker route, for any DOM node that
    has `self.ctx` (screens, modals)."""

    ctx: AppContext

    def background(
        self,
        job: Callable[[Store], T],
        then: Callable[[T], Any] | None = None,
        *,
        group: str = "default",
        exclusive: bool = True,
        description: str = "",
    ) -> Worker[T]:
        """Run `job(store)` in a thread; call `then(result)` on the UI thread (unless the worker
        was cancelled or replaced meanwhile)."""
        ctx = self.ctx

        def work() -> T:
            with ctx.open_store() as store:
                result = job(store)
            self._deliver(then, result)
            return result

        return self._start_thread_worker(work, group, exclusive, description)

    def background_async(
        self,
        job: Callable[[Store], Awaitable[T]],
        then: Callable[[T], Any] | None = None,
        *,
        group: str = "default",
        exclusive: bool = True,
        description: str = "",
    ) -> Worker[T]:
        """Run `await job(store)` on a thread worker's own event loop (see module doc)."""
        ctx = self.ctx

        async def work() -> T:
            with ctx.open_store() as store:
                result = await job(store)
            self._deliver(then, result)
            return result

        return self._start_thread_worker(work, group, exclusive, description)

    def _deliver(self, then: Callable[[Any], Any] | None, result: Any) -> None:
        """From the worker's thread: hand `result` to `then` on the UI thread, by message."""
        worker = get_current_worker()
        if then is not None and not worker.is_cancelled:
            self.post_message(WorkerResult(worker, then, result))  # type: ignore[attr-defined]

    def _start_thread_worker(self, work: Callable[[], Any], group: str, exclusive: bool,
                             description: str) -> Worker[Any]:
        return self.run_worker(  # type: ignore[attr-defined]
            work, group=group, exclusive=exclusive, thread=True, exit_on_error=False,
            description=description or group,
        )

    def on_worker_result(self, message: WorkerResult) -> None:
        message.stop()
        if message.worker.is_cancelled:
            return
        message.then(message.result)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            report_worker_failure(self.app, event.worker)  # type: ignore[attr-defined]


def quiet_cursors(node: Screen[Any]) -> None:
    """Stop text cursors blinking when the app asks (snapshots must not depend on timing)."""
    if getattr(node.app, "cursor_blink", True):
        return
    for widget in node.query(Input):
        widget.cursor_blink = False
    for area in node.query(TextArea):
        area.cursor_blink = False


class ConsoleScreen(BackgroundMixin, Screen[None]):
    """Base of the section screens (modes). `TITLE_TEXT` is shown in the header.

    Every section has the same frame: the header, the screen's own widgets (`compose_body`),
    the line of section keys and the footer with the screen's keys."""

    TITLE_TEXT = ""

    def __init__(self, ctx: AppContext) -> None:
        super().__init__()
        self.ctx = ctx
        if self.TITLE_TEXT:
            self.sub_title = self.TITLE_TEXT

    def compose(self) -> ComposeResult:
        yield Header()
        yield from self.compose_body()
        yield SectionBar()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        quiet_cursors(self)


class ConsoleModal(BackgroundMixin, ModalScreen[T]):
    """Base of the modals that do background work; `ctx` may be None for pure display modals."""

    def __init__(self, ctx: AppContext | None = None) -> None:
        super().__init__()
        self.ctx = ctx  # type: ignore[assignment]

    def on_mount(self) -> None:
        quiet_cursors(self)


class CsvFileDialog(ConsoleModal[T]):
    """A dialog about one CSV file (mappings import and export): its path in `#csv-path`, the
    outcome in `#csv-result`. Enter in the path runs `submit()`; closing dismisses with None."""

    EMPTY_PATH = "enter a file path"  # the refusal of an empty path

    def __init__(self, ctx: AppContext, path: str = "") -> None:
        super().__init__(ctx)
        self.initial_path = path

    def csv_path(self) -> str | None:
        """The path entered (`~` expanded), or None after saying that one is needed."""
        text = self.query_one("#csv-path", Input).value.strip()
        if not text:
            self.show_result(Text(f"✘ {self.EMPTY_PATH}", style="bold red"))
            return None
        return str(Path(text).expanduser())

    def show_result(self, text: Text | str) -> None:
        self.query_one("#csv-result", Static).update(text)

    def submit(self) -> None:  # pragma: no cover - every dialog defines it
        raise NotImplementedError

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def action_close(self) -> None:
        self.dismiss(None)
