"""The webhook receiver (W1, W2): a Starlette app with one endpoint for Docebo and one for Credly.

Design notes: docs/design/serve.md
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hmac
import json
import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.core import metrics
from services.core.errors import EXIT_USAGE, CredlyConsoleError
from services.store import inbox
from services.store.db import Store, utcnow

log = logging.getLogger("credly_console.receiver")

MAX_BODY_BYTES = 1 << 20
REJECTION_WINDOW_S = 15 * 60.0
SECRET_PATTERN = re.compile(r"[A-Za-z0-9._~-]+")
DOCEBO_PATH = "/webhooks/docebo"
CREDLY_PATH = "/webhooks/credly"


class WriterUnavailable(CredlyConsoleError, RuntimeError):
    """The inbox writer is stopped or could not commit; the delivery was not stored."""


# -- group-commit writer -------------------------------------------------------------------------


@dataclasses.dataclass
class _Insert:
    items: list[inbox.NewItem]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future


@dataclasses.dataclass
class _Reject:
    key: str
    title: str
    detail: str
    client: str
    when: float  # the writer's clock when the request was refused
    at: str


@dataclasses.dataclass
class _Window:
    notification_id: int
    opened: float
    first_at: str
    count: int
    written: int
    written_at: float
    detail: str
    client: str
    last_at: str
    title: str


class InboxWriter:
    """One thread owning one connection that stores deliveries with group commit (W2).

    ``await submit(items)`` returns, per item, True when new and False when a duplicate, once the
    rows are committed. ``reject(...)`` records a refused request (rate-limited notifications).
    ``on_stored()`` is called (from the writer thread) after each commit that stored new queued
    rows, so workers can start at once. ``stop()`` commits what is queued, then ends."""

    BATCH_MAX = 512
    FLUSH_COUNTS_S = 2.0

    def __init__(
        self,
        db_path: str | Path,
        *,
        on_stored: Callable[[], None] | None = None,
        window_s: float = REJECTION_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
        synchronous: str = "FULL",
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError("synchronous must be FULL or NORMAL")
        self.synchronous = synchronous
        self.db_path = Path(db_path)
        self.on_stored = on_stored
        self.window_s = window_s
        self.clock = clock
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopping = False
        self._windows: dict[str, _Window] = {}
        self.batches = 0  # commits made (benchmarks)
        self.stored = 0
        self.duplicates = 0

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> InboxWriter:
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._main, name="inbox-writer", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise WriterUnavailable(f"the inbox writer could not open the database: {self._error}")
        return self

    def stop(self, timeout: float = 30.0) -> None:
        if self._thread is None:
            return
        self._stopping = True
        self._queue.put(None)
        self._thread.join(timeout)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopping

    # -- API (any thread / loop) ----------------------------------------------------------
    async def submit(self, items: list[inbox.NewItem]) -> list[bool]:
        if not self.running:
            raise WriterUnavailable("the inbox writer is not running")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put(_Insert(items, loop, future))
        return await future

    def reject(self, key: str, title: str, detail: str, client: str) -> None:
        if self.running:
            self._queue.put(_Reject(key, title, detail, client, self.clock(), utcnow()))

    # -- the thread -----------------------------------------------------------------------
    def _main(self) -> None:
        try:
            store = Store(self.db_path)
            # W2 "stored durably before it is acknowledged": with WAL and synchronous = FULL each
            # group commit syncs the WAL once, so an acknowledged delivery survives a power cut, not
            # only a killed process (Docebo and Credly do not resend what we acknowledged). Group
            # commit keeps it to one sync per batch; NORMAL (no sync until a checkpoint) is an
            # option for disks where that costs too much: benchmarks/bench_receiver.py
            # --synchronous NORMAL measures the difference.
            store.conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            # Checkpoints (which fsync) are left to the engine's connection (its commits and a
            # periodic PASSIVE checkpoint), so a checkpoint never runs inside an acknowledgement.
            store.conn.execute("PRAGMA wal_autocheckpoint = 0")
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                try:
                    first = self._queue.get(timeout=self.FLUSH_COUNTS_S)
                except queue.Empty:
                    self._flush_counts(store, force=True)
                    continue
                batch = [first]
                while len(batch) < self.BATCH_MAX:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                stop = any(m is None for m in batch)
                self._process(store, [m for m in batch if m is not None])
                if stop:
                    # Whatever arrived meanwhile is still stored before the thread ends.
                    rest = []
                    while True:
                        try:
                            m = self._queue.get_nowait()
                        except queue.Empty:
                            break
                        if m is not None:
                            rest.append(m)
                    self._process(store, rest)
                    self._flush_counts(store, force=True)
                    return
        finally:
            store.close()

    def _process(self, store: Store, batch: list[Any]) -> None:
        inserts = [m for m in batch if isinstance(m, _Insert)]
        if inserts:
            self._commit(store, inserts)
        for m in batch:
            if isinstance(m, _Reject):
                try:
                    self._record_rejection(store, m)
                except Exception:  # a notification must never break the ack path
                    log.exception("could not record a refused webhook request")
        self._flush_counts(store)

    def _commit(self, store: Store, inserts: list[_Insert]) -> None:
        try:
            flat = [item for req in inserts for item in req.items]
            results = inbox.insert_items(store, flat)
        except Exception as exc:
            log.error("could not store %d webhook deliveries: %s", len(inserts), exc)
            for req in inserts:
                _resolve(req, exc=WriterUnavailable(f"the inbox could not be written: {exc}"))
            return
        self.batches += 1
        new_queued = False
        pos = 0
        for req in inserts:
            n = len(req.items)
            part = results[pos : pos + n]
            for item, fresh in zip(req.items, part, strict=True):
                if fresh and item.status == "queued":
                    new_queued = True
            self.stored += sum(part)
            self.duplicates += n - sum(part)
            pos += n
            _resolve(req, result=part)
        if new_queued and self.on_stored is not None:
            try:
                self.on_stored()
            except Exception:
                log.exception("on_stored callback failed")

    # -- rate-limited refusal notifications (W2, N1) --------------------------------------
    def _record_rejection(self, store: Store, m: _Reject) -> None:
        from services.store import notifications

        now, at = m.when, m.at
        window = self._windows.get(m.key)
        if window is not None and now - window.opened < self.window_s:
            window.count += 1
            window.detail, window.client, window.last_at = m.detail, m.client, at
            return
        if window is not None and window.count != window.written:
            self._write_count(store, window, now)
        body = self._body(m.title, 1, at, m.detail, m.client, at)
        nid = notifications.create_notification(
            store, "webhook_rejected", m.title, body=body, flow="receiver", object=m.key
        )
        self._windows[m.key] = _Window(nid, now, at, 1, 1, now, m.detail, m.client, at, m.title)

    def _flush_counts(self, store: Store, force: bool = False) -> None:
        now = self.clock()
        for window in self._windows.values():
            if window.count == window.written:
                continue
            if not force and now - window.written_at < self.FLUSH_COUNTS_S:
                continue
            self._write_count(store, window, now)

    def _write_count(self, store: Store, window: _Window, now: float) -> None:
        body = self._body(window.title, window.count, window.first_at, window.detail, window.client, window.last_at)
        try:
            with store.write():
                store.conn.execute(
                    "UPDATE notifications SET body = ?, title = ? WHERE id = ?",
                    (body, f"{window.title} ({window.count}×)", window.notification_id),
                )
        except Exception:
            log.exception("could not update a refused-request count")
            return
        window.written, window.written_at = window.count, now

    def _body(self, title: str, count: int, first_at: str, detail: str, client: str, last_at: str) -> str:
        minutes = int(self.window_s // 60) or 1
        span = "a minute" if minutes == 1 else f"{minutes} minutes"
        lines = [
            f"{title}.",
            f"Refused requests: {count} (first at {first_at}, last at {last_at}).",
            f"Last reason: {detail}",
            f"Last client address: {client or 'unknown'}",
            "",
            "Nothing from these requests was stored or processed. Further refusals of this kind "
            f"within {span} are counted here rather than notified again.",
        ]
        return "\n".join(lines)


def _resolve(req: _Insert, *, result: Any = None, exc: BaseException | None = None) -> None:
    def _set() -> None:
        if req.future.done():
            return
        if exc is not None:
            req.future.set_exception(exc)
        else:
            req.future.set_result(result)

    try:
        req.loop.call_soon_threadsafe(_set)
    except RuntimeError:  # the request's loop is gone (server stopped); nothing to answer
        pass


# -- the app -------------------------------------------------------------------------------------


@dataclasses.dataclass
class ReceiverSettings:
    """What the receiver checks. ``secret`` must be non-empty."""

    secret: str
    organization_id: str = ""
    docebo_basic_auth_user: str = ""
    max_body_bytes: int = MAX_BODY_BYTES

    @classmethod
    def from_config(cls, config: Any, secrets: Any) -> ReceiverSettings:
        secret = secrets.get("webhook_secret") or ""
        if not secret:
            raise ReceiverConfigError(
                "no webhook secret is set: run `credly-console webhooks --new-secret` (or `credly-console "
                "secrets set webhook_secret`), or set CREDLY_CONSOLE_WEBHOOK_SECRET"
            )
        if not SECRET_PATTERN.fullmatch(secret):
            raise ReceiverConfigError(
                "the webhook secret may hold only letters, digits and - _ . ~ (it is part of the webhook URLs); "
                "`credly-console webhooks --new-secret` makes a suitable one"
            )
        return cls(
            secret=secret,
            organization_id=config.credly.organization_id or "",
            docebo_basic_auth_user=config.server.docebo_basic_auth_user or "",
        )


# Webhook bodies of both services nest a few levels; far deeper is an attack on the parser.
MAX_JSON_DEPTH = 32


def nesting_depth(value: Any) -> int:
    """How deeply `value` (parsed JSON) nests lists and objects, counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if depth > MAX_JSON_DEPTH:
                break
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


class ReceiverConfigError(CredlyConsoleError, RuntimeError):
    """The receiver cannot start with this configuration (e.g. no webhook secret)."""

    exit_code = EXIT_USAGE


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class RequestGuard:
    """What every webhook request passes before it is parsed: the secret in the path, Docebo's
    optional HTTP Basic credentials, the body size and JSON depth limits. A refusal is logged at
    most once a minute per reason (with how many more came) and recorded through the writer."""

    def __init__(self, settings: ReceiverSettings, writer: InboxWriter) -> None:
        self.settings = settings
        self.writer = writer
        self.logged: dict[str, list[float]] = {}  # key -> [last logged (monotonic), refusals not logged since]

    def refuse(self, source: str, reason: str, title: str, detail: str, request: Request) -> None:
        key = f"{source}:{reason}"
        now = time.monotonic()
        entry = self.logged.setdefault(key, [float("-inf"), 0])
        if now - entry[0] >= 60.0:  # one log line per reason a minute, whatever the flood
            more = f" (and {int(entry[1])} more like it in the last minute)" if entry[1] else ""
            log.warning("refused a %s webhook request from %s: %s%s", source, _client(request) or "?", detail, more)
            entry[0], entry[1] = now, 0
        else:
            entry[1] += 1
        metrics.DELIVERIES.labels(source, "refused", reason).inc()
        self.writer.reject(key, title, detail, _client(request))

    async def read_json(self, request: Request, source: str) -> tuple[Any, JSONResponse | None]:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.settings.max_body_bytes:
            self.refuse(source, "too_large", f"{source.capitalize()} webhook with an oversized body refused",
                        f"body of {declared} bytes, over the {self.settings.max_body_bytes}-byte limit", request)
            return None, _error(413, "body too large")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.settings.max_body_bytes:
                self.refuse(source, "too_large", f"{source.capitalize()} webhook with an oversized body refused",
                            f"body over the {self.settings.max_body_bytes}-byte limit", request)
                return None, _error(413, "body too large")
            chunks.append(chunk)
        raw = b"".join(chunks)
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            detail = f"the body is not valid JSON ({type(exc).__name__} at position {getattr(exc, 'pos', '?')})"
            self.refuse(source, "malformed", f"Malformed {source.capitalize()} webhook body refused", detail, request)
            return None, _error(400, detail)
        except RecursionError:
            body = None  # nested deeper than the parser goes: refused below like any too-deep body
        if body is None and raw.strip() != b"null" or nesting_depth(body) > MAX_JSON_DEPTH:
            detail = f"the body nests objects or arrays deeper than {MAX_JSON_DEPTH} levels"
            self.refuse(source, "malformed", f"Malformed {source.capitalize()} webhook body refused", detail, request)
            return None, _error(400, detail)
        try:  # "\ud800" is valid JSON but no UTF-8 text: the inbox could never store it (a 503 loop)
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            detail = f"the body is not valid Unicode text (a lone surrogate {exc.object[exc.start:exc.end]!a})"
            self.refuse(source, "malformed", f"Malformed {source.capitalize()} webhook body refused", detail, request)
            return None, _error(400, detail)
        return body, None

    def check_secret(self, request: Request, source: str) -> JSONResponse | None:
        if _same(request.path_params.get("secret", ""), self.settings.secret):
            return None
        self.refuse(source, "wrong_secret", f"{source.capitalize()} webhook request with a wrong secret refused",
                    "the secret in the URL path does not match the webhook secret", request)
        return _error(403, "forbidden")

    def check_basic_auth(self, request: Request) -> JSONResponse | None:
        user = self.settings.docebo_basic_auth_user
        if not user:
            return None
        header = request.headers.get("authorization", "")
        ok = False
        if header[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):  # binascii.Error, or non-ASCII text in the header
                decoded = ""
            name, sep, password = decoded.partition(":")
            # Both compared in full, whatever the first result, so timing says nothing.
            ok_user = _same(name, user)
            ok_pass = _same(password, self.settings.secret)
            ok = bool(sep) and ok_user and ok_pass
        if ok:
            return None
        detail = "no HTTP Basic credentials" if not header else "wrong HTTP Basic credentials"
        self.refuse("docebo", "basic_auth", "Docebo webhook refused: HTTP Basic authentication failed", detail, request)
        return _error(401, "authentication required", {"WWW-Authenticate": 'Basic realm="credly-console"'})


def create_receiver_app(settings: ReceiverSettings, writer: InboxWriter, ops: list[Route] | None = None) -> Starlette:
    """The receiver's ASGI app (served by uvicorn; in tests also through httpx.ASGITransport).
    `ops`: the operator endpoints (services/serve/ops.py), mounted ahead of the plain /healthz."""
    if not settings.secret:
        raise ReceiverConfigError("the receiver needs a non-empty webhook secret")

    guard = RequestGuard(settings, writer)

    async def store(items: list[inbox.NewItem]) -> JSONResponse:
        try:
            results = await writer.submit(items)
        except WriterUnavailable as exc:
            return _error(503, str(exc))
        stored = sum(results)
        source = items[0].source if items else "docebo"
        metrics.DELIVERIES.labels(source, "accepted", "").inc(stored)
        metrics.DELIVERIES.labels(source, "duplicate", "").inc(len(results) - stored)
        return JSONResponse(
            {"status": "accepted" if stored else "duplicate", "stored": stored, "duplicates": len(results) - stored}
        )

    async def docebo(request: Request) -> JSONResponse:
        denied = guard.check_secret(request, "docebo") or guard.check_basic_auth(request)
        if denied is not None:
            return denied
        body, bad = await guard.read_json(request, "docebo")
        if bad is not None:
            return bad
        try:
            items = inbox.parse_docebo_delivery(body)
        except inbox.DeliveryError as exc:
            guard.refuse("docebo", exc.reason, "Malformed Docebo webhook body refused", str(exc), request)
            return _error(400, str(exc))
        return await store(items)

    async def credly(request: Request) -> JSONResponse:
        denied = guard.check_secret(request, "credly")
        if denied is not None:
            return denied
        body, bad = await guard.read_json(request, "credly")
        if bad is not None:
            return bad
        if not settings.organization_id:
            guard.refuse("credly", "not_configured", "Credly notice refused: no Credly organization is configured",
                         "[credly] organization_id is empty, so the notice cannot be checked", request)
            return _error(503, "no Credly organization is configured")
        try:
            item = inbox.parse_credly_notice(body, settings.organization_id)
        except inbox.DeliveryError as exc:
            if exc.reason == "foreign_organization":
                guard.refuse("credly", exc.reason, "Credly notice for another organization refused", str(exc), request)
                return _error(403, str(exc))
            guard.refuse("credly", exc.reason, "Malformed Credly webhook body refused", str(exc), request)
            return _error(400, str(exc))
        return await store([item])

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok" if writer.running else "stopping"})

    routes = [
        *(ops or []),
        Route(DOCEBO_PATH + "/{secret}", docebo, methods=["POST"]),
        Route(CREDLY_PATH + "/{secret}", credly, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.writer = writer
    return app


# -- the URLs an admin pastes into Docebo and Credly ---------------------------------------------


def base_url(host: str, port: int, public_url: str = "") -> str:
    """The receiver's base URL: ``public_url`` (behind a reverse proxy) or ``http://host:port``."""
    if public_url:
        return public_url.rstrip("/")
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}"


def webhook_urls(base: str, secret: str) -> dict[str, str]:
    """``{"docebo": ..., "credly": ...}``: the two endpoint URLs (they contain the secret)."""
    return {
        "docebo": f"{base.rstrip('/')}{DOCEBO_PATH}/{secret}",
        "credly": f"{base.rstrip('/')}{CREDLY_PATH}/{secret}",
    }
