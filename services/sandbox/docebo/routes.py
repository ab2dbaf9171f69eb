"""The Docebo sandbox: a Starlette app serving `DoceboState` as Docebo Learn's REST API (issue 3).

Base URL = the server root (`http://127.0.0.1:<port>`); routes as api/docebo.md §8 and the
team's [I] route decisions (common.md, mirrored in services/clients/routes.py).

API behaviour, by api/docebo.md section:
- §1.2 `POST /oauth2/token`: grants `client_credentials`, `password`, `refresh_token`; body as
  form, multipart or JSON, client credentials also as HTTP Basic. Bad client → 401
  `{"error": "invalid_client", ...}`; bad user/password, unknown or disallowed grant, missing
  field → 400 with `invalid_grant` / `unsupported_grant_type` / `unauthorized_client` /
  `invalid_request`. Tokens are 40-hex, live `state.token_lifetime_s` (3600) seconds.
- Every other API route needs `Authorization: Bearer <token>`: missing, unknown or expired → 401.
- §1.3 list envelope `{"data": {items, count, has_more_data, current_page, current_page_size,
  total_page_count, cursor[, total_count]}, "version": "1.0.0", "_links": []}`; `page` (default 1),
  `page_size` (default 200; 20 on `/learn/v1/courses`; larger values are clamped to 200 [I]);
  `get_total_count=1` adds `total_count`. Array filters take `x[]=1&x[]=2`, `x[0]=1` or `x=1,2`.
- §1.4 errors: `{"name", "message", "code": 0, "status"}` ([I], Yii style) with 400 (bad
  parameter or body), 401, 404 (unknown id or route), 405, 409 (second award of a certification
  to the same user), 429 (rate limit), 5xx (faults).
- §1.5 rate limit: off by default; `PUT /_sandbox/rate-limit` (or `FaultConfig.rate_limit`) turns
  it on: 1,000 calls per hour by default, then 429 with (switchable) `Retry-After`.
- §7 webhooks: see `DoceboWebhooks`.
- Changed-since filter `updated_from=YYYY-MM-DD HH:MM:SS` ([I], Docebo's style on courses and
  learning plans in public code) on courses (`date_last_updated`), course enrollments and
  learning-plan enrollments (`enrollment_date_last_updated`) and certification awards
  (`date_last_updated`): items updated on or after it. Every response carries a `Date` header
  from the tenant's clock (`state.now()`).

Control endpoints (not part of Docebo; no auth; neither counted nor faulted):
  GET    /_sandbox                          credentials, counts, webhook and fault settings
  POST   /_sandbox/reset                    {state?, calls?, faults?, webhook?} (all true by
                                            default): back to the loaded data (tokens dropped),
                                            counters zeroed, faults off, queued events and the
                                            delivery log cleared (the webhook URL is kept)
  GET    /_sandbox/calls                    per-route call counters {"calls", "statuses", "total"}
  DELETE /_sandbox/calls                    zero the counters (204)
  GET    /_sandbox/faults                   fault settings
  PUT    /_sandbox/faults                   (or POST) change settings {latency_ms, jitter_ms,
                                            fail_rate, fail_status, drop_rate, rate_limit,
                                            rate_window_s, seed}, "force": {kind, route?, times?,
                                            status?} or a list of them, "reset": true (all off)
  PUT    /_sandbox/rate-limit               {"enabled", "per_hour": 1000, "retry_after": true}
  PUT    /_sandbox/config                   {"token_lifetime_s", "user_id_as_string",
                                            "updated_from_filter": false = ignore `updated_from`
                                            as a tenant without the filter would}
  GET    /_sandbox/clock                    the tenant's clock {now, offset_s}
  PUT    /_sandbox/clock                    (or POST) {"advance_s": N}: time travel forward (data
                                            timestamps and the Date header; tokens unaffected)
  POST   /_sandbox/tokens/expire            expire every token now
  PUT    /_sandbox/token                    {"expired": true}: the same (Credly sandbox's shape)
  GET    /_sandbox/webhook                  webhook settings (password not shown)
  PUT    /_sandbox/webhook                  (or POST) {"url", "grouping", "group_window_s", "basic_auth":
                                            {"username", "password"} | null, "webhook_id",
                                            "original_domain", "events", "retry_delays",
                                            "max_attempts"}
  DELETE /_sandbox/webhook                  stop sending
  POST   /_sandbox/webhook/flush            send grouped events now
  GET    /_sandbox/webhook/deliveries       every message sent and each attempt's status
  POST   /_sandbox/learner/complete         act as the learner: {"course_id", "user_id",
                                            "completion_date"?} or {"completions": [...]}
                                            (a list is a batch: fired_by_batch_action true);
                                            enrolls first when needed
  POST   /_sandbox/learner/enroll           {"user_id", "course_id" | "learning_plan_id"}
  POST   /_sandbox/admin/awards             act as the admin: award {"id_cert" |
                                            "certification_code", "user_id", "issued_on"?,
                                            "expire_on"?}
  PUT    /_sandbox/admin/awards/{award_id}  update dates / source / link
  DELETE /_sandbox/admin/awards/{award_id}  revoke (certification.revoked)
  PUT    /_sandbox/admin/courses/{course_id}/fields/{field_id}
                                            set a course's value: {"value": option id | null}
                                            or {"label": "..."}
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import math
import re
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.sandbox.common import (
    DateHeader,
    FaultConfig,
    RouteCounter,
    SandboxHandles,
    SandboxMiddleware,
    WebhookSender,
    any_2xx_3xx,
    reset_parts,
)
from services.sandbox.docebo.state import (
    CERTIFICATION_EVENTS,
    COMPLETION_EVENT,
    DoceboError,
    DoceboState,
    as_int,
    normalise_status,
)

API_VERSION = "1.0.0"
DEFAULT_PAGE_SIZE = 200
COURSES_PAGE_SIZE = 20
MAX_PAGE_SIZE = 200
DOCEBO_RATE_LIMIT_PER_HOUR = 1000
GROUP_MAX = 25  # api/docebo.md §7.1: at most 25 events per grouped delivery
WEBHOOK_EVENTS = (COMPLETION_EVENT, *CERTIFICATION_EVENTS)

# ------------------------------------------------------------------------------------------------
# Responses
# ------------------------------------------------------------------------------------------------

_HEADERS = {"X-Docebo-Api-Version": API_VERSION}


def error_body(status: int, message: str) -> dict[str, Any]:
    """Docebo's error body ([I], api/docebo.md §1.4)."""
    return {"name": DoceboError.NAMES.get(status, "Error"), "message": message, "code": 0, "status": status}


def _error_response(status: int, message: str) -> JSONResponse:
    headers = dict(_HEADERS)
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="api", error="invalid_token"'
    return JSONResponse(error_body(status, message), status_code=status, headers=headers)


def single(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse({"data": data, "version": API_VERSION, "_links": []}, status_code=status, headers=_HEADERS)


def _qp_int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise DoceboError(400, f"Parameter '{name}' must be an integer, got {raw!r}") from None


def array_param(request: Request, name: str, *, ints: bool = True) -> list | None:
    """PHP-style array parameter: `name[]=1&name[]=2`, `name[0]=1&name[1]=2`, `name=1,2`.
    None when absent."""
    pattern = re.compile(rf"{re.escape(name)}(\[\d*\])?")
    values: list[str] = []
    found = False
    for key, value in request.query_params.multi_items():
        if pattern.fullmatch(key):
            found = True
            values.extend(v for v in value.split(",") if v.strip() != "")
    if not found:
        return None
    if not ints:
        return [v.strip() for v in values]
    out = []
    for v in values:
        try:
            out.append(int(v))
        except ValueError:
            raise DoceboError(400, f"Parameter '{name}[]' takes integers, got {v!r}") from None
    return out


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("1", "true", "yes")


def paged(
    request: Request,
    source: list | Iterator,
    serialise: Callable[[Any], dict],
    *,
    default_size: int = DEFAULT_PAGE_SIZE,
) -> JSONResponse:
    """The list envelope (api/docebo.md §1.3) for one page of `source`, serialising only that
    page. An iterator is walked once to count the matches; nothing is copied."""
    page = _qp_int(request, "page", 1)
    if page < 1:
        raise DoceboError(400, f"Parameter 'page' must be 1 or more, got {page}")
    if _flag(request, "no_pagination"):
        page, size = 1, None
    else:
        size = _qp_int(request, "page_size", default_size)
        if size < 1:
            raise DoceboError(400, f"Parameter 'page_size' must be 1 or more, got {size}")
        size = min(size, MAX_PAGE_SIZE)
    if isinstance(source, list):
        total = len(source)
        chosen = source if size is None else source[(page - 1) * size : page * size]
    else:
        if size is None:
            chosen = list(source)
            total = len(chosen)
        else:
            start, end = (page - 1) * size, page * size
            chosen, total = [], 0
            for rec in source:
                if start <= total < end:
                    chosen.append(rec)
                total += 1
    items = [serialise(r) for r in chosen]
    per_page = size or max(total, 1)
    data: dict[str, Any] = {
        "items": items,
        "count": len(items),
        "has_more_data": size is not None and page * size < total,
        "current_page": page,
        "current_page_size": per_page,
        "total_page_count": math.ceil(total / per_page),
        "cursor": _cursor(request),
    }
    if _flag(request, "get_total_count"):
        data["total_count"] = total
    return JSONResponse({"data": data, "version": API_VERSION, "_links": []}, headers=_HEADERS)


def _cursor(request: Request) -> str:
    given = request.query_params.get("cursor")
    if given:
        return given
    params = sorted((k, v) for k, v in request.query_params.multi_items() if k not in ("page", "get_cursor"))
    return hashlib.sha1(f"{request.url.path}?{params}".encode()).hexdigest()[:32]


async def json_body(request: Request) -> dict:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise DoceboError(400, "The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise DoceboError(400, "The request body must be a JSON object")
    return body


# ------------------------------------------------------------------------------------------------
# Webhooks (api/docebo.md §7)
# ------------------------------------------------------------------------------------------------


def message_id(at: datetime | None = None) -> str:
    """`wh-YYYYMMDD-HHMMSS-<uuid4>` (api/docebo.md §7.2)."""
    at = at or datetime.now(UTC)
    return f"wh-{at:%Y%m%d-%H%M%S}-{uuid.uuid4()}"


class DoceboWebhooks:
    """Builds Docebo webhook messages from state events and hands them to the shared sender.

    Each message carries the common properties (`message_id`, `webhook_id`, `original_domain`,
    `event`, `fired_by_batch_action`) and `payload`; with grouping on, events of one type are
    collected for `group_window_s` seconds and sent as `payloads` (at most 25 per message, so a
    burst of 30 gives a message of 25 then one of 5). Deliveries count as received on any 2xx or
    3xx; others are retried by the sender, re-sending the same `message_id`. Optional HTTP Basic
    credentials go on every delivery."""

    def __init__(self, sender: WebhookSender) -> None:
        self.sender = sender
        self.grouping = False
        self.group_window_s = 0.2
        self.webhook_id = 1
        self.original_domain = "docebo-sandbox.localhost"
        self.events: set[str] = set(WEBHOOK_EVENTS)
        self.basic_auth: tuple[str, str] | None = None
        self.messages: deque[dict] = deque(maxlen=1000)
        self._pending: dict[str, list[tuple[dict, bool]]] = {}
        self._timer: asyncio.TimerHandle | None = None

    @property
    def url(self) -> str | None:
        """The delivery URL; the sender's `url` is the one source of truth (the runner sets it)."""
        return self.sender.url

    def configure(self, body: dict) -> None:
        known = {
            "url", "grouping", "group_window_s", "basic_auth", "webhook_id", "original_domain",
            "events", "retry_delays", "max_attempts",
        }
        unknown = set(body) - known
        if unknown:
            raise DoceboError(400, f"Unknown webhook setting(s): {', '.join(sorted(unknown))}")
        if "url" in body:
            url = body["url"]
            if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
                raise DoceboError(400, f"Webhook url must be an http(s) URL, got {url!r}")
            self.sender.configure(url=url or None)
        if "grouping" in body:
            self.grouping = bool(body["grouping"])
        if "group_window_s" in body:
            self.group_window_s = max(0.0, float(body["group_window_s"]))
        if "webhook_id" in body:
            self.webhook_id = as_int(body["webhook_id"], "webhook_id")
        if "original_domain" in body:
            self.original_domain = str(body["original_domain"])
        if "events" in body:
            events = set(body["events"] or ())
            if events - set(WEBHOOK_EVENTS):
                raise DoceboError(400, f"Unknown event(s): {', '.join(sorted(events - set(WEBHOOK_EVENTS)))}")
            self.events = events
        if "basic_auth" in body:
            auth = body["basic_auth"]
            if auth:
                self.basic_auth = (str(auth.get("username", "")), str(auth.get("password", "")))
                token = base64.b64encode(f"{self.basic_auth[0]}:{self.basic_auth[1]}".encode()).decode()
                self.sender.headers["Authorization"] = f"Basic {token}"
            else:
                self.basic_auth = None
                self.sender.headers.pop("Authorization", None)
        if "retry_delays" in body or "max_attempts" in body:
            self.sender.configure(
                retry_delays=body.get("retry_delays"),
                max_attempts=as_int(body["max_attempts"], "max_attempts") if body.get("max_attempts") else None,
            )

    def settings(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "grouping": self.grouping,
            "group_window_s": self.group_window_s,
            "webhook_id": self.webhook_id,
            "original_domain": self.original_domain,
            "events": sorted(self.events),
            "basic_auth": {"username": self.basic_auth[0]} if self.basic_auth else None,
            "retry_delays": list(self.sender.retry_delays),
            "max_attempts": self.sender.max_attempts,
        }

    def emit(self, event: str, payload: dict, batch: bool = False) -> None:
        if not self.url or event not in self.events:
            return
        if not self.grouping:
            self._send(event, [(payload, batch)], grouped=False)
            return
        queue = self._pending.setdefault(event, [])
        queue.append((payload, batch))
        if len(queue) >= GROUP_MAX:
            self._send(event, queue[:GROUP_MAX], grouped=True)
            del queue[:GROUP_MAX]
        if any(self._pending.values()):
            self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._timer = loop.call_later(self.group_window_s, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.flush()

    def flush(self) -> int:
        """Send every queued grouped event now; returns the number of messages sent."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        sent = 0
        for event, queue in list(self._pending.items()):
            while queue:
                self._send(event, queue[:GROUP_MAX], grouped=True)
                del queue[:GROUP_MAX]
                sent += 1
        return sent

    def discard(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending.clear()

    def _send(self, event: str, items: list[tuple[dict, bool]], *, grouped: bool) -> None:
        message: dict[str, Any] = {
            "webhook_id": self.webhook_id,
            "original_domain": self.original_domain,
            "event": event,
            "fired_by_batch_action": all(batch for _, batch in items),
            "message_id": message_id(),
        }
        if grouped:
            message["payloads"] = [p for p, _ in items]
        else:
            message["payload"] = items[0][0]
        self.messages.append(message)
        self.sender.send(message)


# ------------------------------------------------------------------------------------------------
# Middleware: optional Retry-After
# ------------------------------------------------------------------------------------------------


class _RetryAfterSwitch:
    """Drops the `Retry-After` header from 429s when `state.retry_after_header` is False
    (api/docebo.md §1.5: Docebo documents none)."""

    def __init__(self, app: Any, *, state: DoceboState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or self.state.retry_after_header:
            await self.app(scope, receive, send)
            return

        async def strip(message: dict) -> None:
            if message["type"] == "http.response.start" and message.get("status") == 429:
                message = dict(message)
                message["headers"] = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"retry-after"]
            await send(message)

        await self.app(scope, receive, strip)


# ------------------------------------------------------------------------------------------------
# The app
# ------------------------------------------------------------------------------------------------


def create_docebo_app(
    state: DoceboState,
    faults: FaultConfig | None = None,
    *,
    sender: WebhookSender | None = None,
) -> Starlette:
    """The Docebo sandbox app over `state`. `faults` (common.FaultConfig) may be shared with the
    runner; `sender` lets tests pass a WebhookSender (e.g. with a mock transport). In-process
    handles: `app.state.sandbox` (state, faults, calls, webhooks = the sender) and
    `app.state.docebo_webhooks` (the `DoceboWebhooks` dispatcher)."""
    faults = faults or FaultConfig()
    calls = RouteCounter()
    sender = sender or WebhookSender(accept=any_2xx_3xx, retry_delays=(1.0, 2.0, 5.0, 15.0, 30.0, 60.0))
    hooks = DoceboWebhooks(sender)
    state.emit = hooks.emit

    def auth(request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise DoceboError(401, "Your request was made without an access token (Authorization: Bearer <token>)")
        state.check_token(value.strip())

    def api(handler: Callable) -> Callable:
        async def endpoint(request: Request) -> Response:
            auth(request)
            return await handler(request)

        endpoint.__name__ = handler.__name__
        return endpoint

    # -- serialisers -----------------------------------------------------------------------------

    def uid_out(uid: int) -> Any:
        return str(uid) if state.user_id_as_string else uid

    def user_item(uid: int) -> dict:
        u = state.users[uid]
        return {
            "user_id": uid_out(uid),
            "username": u["username"],
            "first_name": u["first_name"],
            "last_name": u["last_name"],
            "fullname": f"{u['first_name']} {u['last_name']}",
            "email": u["email"],
            "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"docebo-sandbox/user/{uid}")),
            "avatar": "",
            "language": "english",
            "level": "6",
            "status": "1",
            "creation_date": u["created"],
            "last_access_date": None,
            "last_update": u["created"],
            "expiration_date": None,
            "email_validation_status": "1",
            "is_manager": False,
            "expired": False,
        }

    def field_values(cid: int) -> dict[str, Any]:
        values = state.course_values.get(cid, {})
        return {f"field_{fid}": values.get(fid) for fid in state.course_fields}

    def course_item(cid: int) -> dict:
        c = state.courses[cid]
        return {
            "id_course": cid,
            "name": c["name"],
            "code": c["code"],
            "description": c["description"],
            "course_type": c["course_type"],
            "uidCourse": f"E-{cid:06d}",
            "slug_name": re.sub(r"[^a-z0-9]+", "-", c["name"].lower()).strip("-"),
            "date_last_updated": c["updated_at"],
            "language": "english",
            "credits": 0,
            "duration": 0,
            "selling": False,
            "img_url": "",
            "status": "published",
            **field_values(cid),
        }

    def course_detail(cid: int) -> dict:
        c = state.courses[cid]
        item = course_item(cid)
        item.pop("id_course")
        item.pop("course_type")
        values = state.course_values.get(cid, {})
        return {
            "id": cid,
            "type": c["course_type"],
            **item,
            "lang_code": "english",
            "learningplans": [
                {"id": lp, "code": state.learning_plans[lp]["code"], "title": state.learning_plans[lp]["title"]}
                for lp in state.lps_by_course.get(cid, ())
            ],
            "additional_fields": [
                {
                    "id": f["id"],
                    "title": f["name"],
                    "type": f["type"],
                    "value": values.get(f["id"]),
                    **({"options": _options(f)} if f["type"] == "dropdown" else {}),
                }
                for f in state.course_fields.values()
            ],
        }

    def _options(f: dict) -> list[dict]:
        return [{"id": oid, "label": label} for oid, label in f["options"].items()]

    def field_item(f: dict) -> dict:
        return {
            "id": f["id"],
            "type": f["type"],
            "name": {"value": f["name"], "values": [f["name"]]},
            "options": _options(f),
        }

    def enrollment_item(rec: dict, extra: set[str]) -> dict:
        c = state.courses[rec["course_id"]]
        item = {
            "user_id": rec["user_id"],
            "username": state.users[rec["user_id"]]["username"],
            "course_id": rec["course_id"],
            "course_code": c["code"],
            "course_name": c["name"],
            "course_type": c["course_type"],
            "enrollment_status": rec["status"],
            "enrollment_level": "student",
            "enrollment_created_at": rec["enrolled_at"],
            "enrollment_date_last_updated": rec["updated_at"],
            "enrollment_completion_date": rec["completed_at"],
            "enrollment_score": rec["score"],
            "enrollment_validity_begin_datetime": None,
            "enrollment_date_end_validity": rec["validity_end"],
        }
        if "enrollment_time_spent" in extra:
            item["enrollment_time_spent"] = 0
        return item

    def lp_item(lp_id: int) -> dict:
        lp = state.learning_plans[lp_id]
        return {
            "learning_plan_id": lp_id,
            "id_path": lp_id,
            "uuid": lp["uuid"],
            "code": lp["code"],
            "title": lp["title"],
            "description": "",
            "is_published": True,
            "credits": 0,
            "assigned_courses_count": len(lp["course_ids"]),
            "assigned_enrollments_count": len(state.lpe_by_lp.get(lp_id, {})),
            "created_on": lp["created_on"],
            "updated_on": lp["updated_on"],
        }

    LP_EXTRA = ("enrollment_status", "enrollment_completion_date", "enrollment_completion_percentage", "enrollment_time_spent")

    def lp_enrollment_item(rec: dict, extra: set[str]) -> dict:
        lp = state.learning_plans[rec["learning_plan_id"]]
        item = {
            "user_id": rec["user_id"],
            "username": state.users[rec["user_id"]]["username"],
            "learning_plan_id": rec["learning_plan_id"],
            "learning_plan_code": lp["code"],
            "learning_plan_name": lp["title"],
            "enrollment_created_at": rec["enrolled_at"],
            "enrollment_date_last_updated": rec["updated_at"],
        }
        values = {
            "enrollment_status": rec["status"],
            "enrollment_completion_date": rec["completed_at"],
            "enrollment_completion_percentage": rec["percentage"],
            "enrollment_time_spent": 0,
        }
        for key in LP_EXTRA:
            if key in extra:
                item[key] = values[key]
        return item

    def cert_item(cert: dict) -> dict:
        days = cert.get("validity_days")
        return {
            "id_cert": cert["id_cert"],
            "code": cert["code"],
            "title": cert["title"],
            "description": cert.get("description", f"{cert['title']} ({cert['code']})"),
            "duration": days or 0,
            "duration_unit": "day" if days else "",
        }

    def award_item(rec: dict) -> dict:
        return {
            "id_award": rec["id_award"],
            "id_cert": rec["id_cert"],
            "user_id": rec["user_id"],
            "issued_on": rec["issued_on"],
            "expire_on": rec["expire_on"],
            "status": state.award_status(rec),
            "source": rec["source"],
            "external_link": rec["external_link"],
            "date_last_updated": rec["updated_at"],
        }

    def training_item(rec: dict) -> dict:
        return dict(rec)

    # -- OAuth2 -----------------------------------------------------------------------------------

    def oauth_error(status: int, error: str, description: str) -> JSONResponse:
        headers = {"WWW-Authenticate": 'Basic realm="oauth"'} if status == 401 else {}
        return JSONResponse({"error": error, "error_description": description}, status_code=status, headers=headers)

    async def token(request: Request) -> Response:
        ctype = request.headers.get("content-type", "")
        try:
            if "application/json" in ctype:
                body = await json_body(request)
                fields = {k: "" if v is None else str(v) for k, v in body.items()}
            else:
                form = await request.form()
                fields = {k: v for k, v in form.items() if isinstance(v, str)}
        except DoceboError:
            return oauth_error(400, "invalid_request", "The request body is not valid JSON")
        except Exception:  # malformed multipart / form
            return oauth_error(400, "invalid_request", "The request body could not be parsed")
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            try:
                cid, _, secret = base64.b64decode(basic[6:].strip()).decode().partition(":")
                fields.setdefault("client_id", cid)
                fields.setdefault("client_secret", secret)
            except ValueError:
                return oauth_error(401, "invalid_client", "Malformed HTTP Basic client credentials")
        grant = fields.get("grant_type", "")
        if not grant:
            return oauth_error(400, "invalid_request", "The grant type was not specified in the request")
        if grant not in ("client_credentials", "password", "refresh_token"):
            return oauth_error(400, "unsupported_grant_type", f'Grant type "{grant}" not supported')
        client_id = fields.get("client_id", "")
        if not client_id:
            return oauth_error(400, "invalid_request", "Client credentials were not found in the request")
        client = state.clients.get(client_id)
        if client is None or not _same(client.client_secret, fields.get("client_secret", "")):
            return oauth_error(401, "invalid_client", "The client credentials are invalid")
        if grant not in client.grants:
            return oauth_error(400, "unauthorized_client", "The grant type is unauthorized for this client_id")
        username: str | None = None
        if grant == "password":
            username, password = fields.get("username", ""), fields.get("password", "")
            if not username or not password:
                return oauth_error(400, "invalid_request", "Missing parameters: \"username\" and \"password\" required")
            if not _same(state.passwords.get(username, "\0" * 16), password) or username not in state.passwords:
                return oauth_error(400, "invalid_grant", "Invalid username and password combination")
        elif grant == "refresh_token":
            held = state.refresh_tokens.get(fields.get("refresh_token", ""))
            if held is None or held[0] != client_id:
                return oauth_error(400, "invalid_grant", "Invalid refresh token")
            username = held[1]
        body = state.issue_token(client_id, username, refresh=grant != "client_credentials")
        return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    # -- users ------------------------------------------------------------------------------------

    async def list_users(request: Request) -> Response:
        qp = request.query_params
        sort_attr = qp.get("sort_attr") or "first_name"
        sort_dir = (qp.get("sort_dir") or "asc").lower()
        if sort_dir not in ("asc", "desc"):
            raise DoceboError(400, f"Parameter 'sort_dir' must be asc or desc, got {sort_dir!r}")
        match_type = (qp.get("match_type") or "").lower()
        if match_type not in ("", "full", "partial"):
            raise DoceboError(400, f"Parameter 'match_type' must be full or partial, got {match_type!r}")
        ids = state.search_users(
            qp.get("search_text", ""), full=match_type == "full", sort_attr=sort_attr, descending=sort_dir == "desc"
        )
        return paged(request, ids, user_item)

    async def get_user(request: Request) -> Response:
        u = state.get_user(request.path_params["user_id"])
        item = user_item(u["user_id"])
        user_data = {
            k: item[k]
            for k in ("user_id", "username", "email", "first_name", "last_name", "fullname", "uuid", "language", "level")
        }
        user_data.update(valid="1", timezone="UTC", creation_date=u["created"], last_access_date=None, expiration_date=None)
        return single({"user_data": user_data, "additional_fields": []})

    async def update_user(request: Request) -> Response:
        u = state.update_user(request.path_params["user_id"], await json_body(request))
        return single({"user_id": uid_out(u["user_id"]), "success": True})

    # -- courses and fields -----------------------------------------------------------------------

    async def list_courses(request: Request) -> Response:
        qp = request.query_params
        sort_by = qp.get("sort_by") or qp.get("sort_attr") or "id_course"
        direction = (qp.get("sort_by_direction") or qp.get("sort_dir") or "asc").lower()
        if direction not in ("asc", "desc"):
            raise DoceboError(400, f"Parameter 'sort_by_direction' must be asc or desc, got {direction!r}")
        order = state.course_order(sort_by)
        if direction == "desc":
            order = order[::-1]
        text = (qp.get("search_text") or "").strip().lower()
        if text:
            order = [c for c in order if text in state.courses[c]["name"].lower() or text in state.courses[c]["code"].lower()]
        wanted = array_param(request, "id_course") or array_param(request, "course_id")
        if wanted is not None:
            keep = set(wanted)
            order = [c for c in order if c in keep]
        changed = state.courses_changed_since(state.changed_since(qp.get("updated_from")))
        if changed is not None:
            order = [c for c in order if c in changed]
        default = COURSES_PAGE_SIZE if request.url.path.startswith("/learn/") else DEFAULT_PAGE_SIZE
        serialise = course_item if request.url.path.startswith("/learn/") else _course_service_item
        return paged(request, order, serialise, default_size=default)

    def _course_service_item(cid: int) -> dict:
        item = course_item(cid)
        return {"id": cid, "type": item["course_type"], **item}

    async def get_course(request: Request) -> Response:
        course = state.get_course(request.path_params["course_id"])
        return single(course_detail(course["id_course"]))

    async def list_fields(request: Request) -> Response:
        return paged(request, list(state.course_fields.values()), field_item)

    async def get_field(request: Request) -> Response:
        return single(field_item(state.get_field(request.path_params["field_id"])))

    def _label(entry: Any, where: str) -> str:
        if not isinstance(entry, dict):
            raise DoceboError(400, f"Each entry of {where} must be an object")
        translations = entry.get("translations")
        if not isinstance(translations, dict) or not translations:
            raise DoceboError(400, f"Each entry of {where} needs translations {{\"english\": label}}")
        label = translations.get("english") or next(iter(translations.values()))
        if not isinstance(label, str) or not label.strip():
            raise DoceboError(400, f"Each entry of {where} needs a non-empty label")
        return label

    async def create_field(request: Request) -> Response:
        body = await json_body(request)
        translations = body.get("translations")
        if not isinstance(translations, dict) or not isinstance(translations.get("english"), str):
            raise DoceboError(400, "Field 'translations' with an 'english' name is required")
        options = body.get("dropdown_options") or []
        if not isinstance(options, list):
            raise DoceboError(400, "Field 'dropdown_options' must be a list")
        labels = [_label(o, "dropdown_options") for o in options]
        fld = state.create_field(str(body.get("type") or ""), translations["english"], labels)
        return single(field_item(fld), status=201)

    async def update_field(request: Request) -> Response:
        body = await json_body(request)
        name = None
        if "translations" in body:
            translations = body["translations"]
            if not isinstance(translations, dict) or not isinstance(translations.get("english"), str):
                raise DoceboError(400, "Field 'translations' needs an 'english' name")
            name = translations["english"]
        opts = body.get("dropdown_options") or {}
        if not isinstance(opts, dict):
            raise DoceboError(400, "Field 'dropdown_options' must be an object {new, updated, deleted}")
        unknown = set(opts) - {"new", "updated", "deleted"}
        if unknown:
            raise DoceboError(400, f"Unknown dropdown_options key(s): {', '.join(sorted(unknown))}")
        new = [_label(o, "dropdown_options.new") for o in opts.get("new") or []]
        renamed: dict[int, str] = {}
        for entry in opts.get("updated") or []:
            if not isinstance(entry, dict) or "id_option" not in entry:
                raise DoceboError(400, "Each entry of dropdown_options.updated needs id_option")
            renamed[as_int(entry["id_option"], "id_option")] = _label(entry, "dropdown_options.updated")
        deleted = []
        for entry in opts.get("deleted") or []:
            if not isinstance(entry, dict) or "id_option" not in entry:
                raise DoceboError(400, "Each entry of dropdown_options.deleted needs id_option")
            deleted.append(as_int(entry["id_option"], "id_option"))
        fld = state.update_field(request.path_params["field_id"], name=name, new=new, renamed=renamed, deleted=deleted)
        return single(field_item(fld))

    async def delete_field(request: Request) -> Response:
        state.delete_field(request.path_params["field_id"])
        return single([])

    # -- enrollments --------------------------------------------------------------------------------

    async def list_enrollments(request: Request) -> Response:
        course_ids = array_param(request, "course_id")
        if "course_id" in request.path_params:
            course_ids = [state.get_course(request.path_params["course_id"])["id_course"]]
        statuses = array_param(request, "enrollment_status", ints=False)
        if statuses is not None:
            statuses = [normalise_status(s) for s in statuses]
        extra = set(array_param(request, "extra_fields", ints=False) or ())
        source = state.iter_enrollments(
            course_ids, array_param(request, "user_id"), statuses,
            updated_from=state.changed_since(request.query_params.get("updated_from")),
        )
        return paged(request, source, lambda r: enrollment_item(r, extra))

    async def get_enrollment(request: Request) -> Response:
        rec = state.get_enrollment(request.path_params["course_id"], request.path_params["user_id"])
        c = state.courses[rec["course_id"]]
        return single(
            {
                "records": {
                    "id": rec["course_id"],
                    "user_id": rec["user_id"],
                    "name": c["name"],
                    "course_code": c["code"],
                    "type": c["course_type"],
                    "status": rec["status"],
                    "course_complete_date": rec["completed_at"],
                    "enroll_begin_date": rec["enrolled_at"],
                    "enroll_end_date": rec["validity_end"],
                    "score": rec["score"],
                    "level": "student",
                    "enrollment_fields": [],
                }
            }
        )

    async def update_enrollment(request: Request) -> Response:
        body = await json_body(request)
        if not body:
            raise DoceboError(400, "Nothing to update: send status, date_complete, score_given or date_expire_validity")
        state.set_enrollment(
            request.path_params["course_id"],
            request.path_params["user_id"],
            status=body.get("status"),
            date_complete=body.get("date_complete"),
            score=body.get("score_given"),
            date_expire_validity=body["date_expire_validity"] if "date_expire_validity" in body else ...,
        )
        return single([])

    async def create_enrollments(request: Request) -> Response:
        body = await json_body(request)
        course_ids = body.get("course_ids") or ([body["course_id"]] if body.get("course_id") else [])
        user_ids = body.get("user_ids") or ([body["user_id"]] if body.get("user_id") else [])
        if not course_ids or not user_ids:
            raise DoceboError(400, "Fields 'course_ids' and 'user_ids' are required")
        for cid in course_ids:
            state.get_course(cid)
        for uid in user_ids:
            state.get_user(uid)
        created = 0
        for cid in course_ids:
            for uid in user_ids:
                created += state.enroll(cid, uid)[1]
        return single({"enrolled": created})

    # -- learning plans -----------------------------------------------------------------------------

    async def list_lps(request: Request) -> Response:
        qp = request.query_params
        order = sorted(state.learning_plans)
        text = (qp.get("search_text") or "").strip().lower()
        if text:
            order = [
                lp for lp in order
                if text in state.learning_plans[lp]["title"].lower() or text in state.learning_plans[lp]["code"].lower()
            ]
        if (qp.get("sort_dir") or "asc").lower() == "desc":
            order = order[::-1]
        return paged(request, order, lp_item)

    async def get_lp(request: Request) -> Response:
        lp = state.get_learning_plan(request.path_params["lp_id"])
        return single(lp_item(lp["learning_plan_id"]))

    async def lp_courses(request: Request) -> Response:
        lp = state.get_learning_plan(request.path_params["lp_id"])

        def item(pair: tuple[int, int]) -> dict:
            seq, cid = pair
            c = state.courses[cid]
            return {"id_course": cid, "name": c["name"], "code": c["code"], "course_type": c["course_type"], "sequence": seq}

        return paged(request, list(enumerate(lp["course_ids"], 1)), item)

    async def lp_enrollments(request: Request) -> Response:
        statuses = array_param(request, "enrollment_status", ints=False)
        if statuses is not None:
            statuses = [normalise_status(s) for s in statuses]
        extra = set(array_param(request, "extra_fields", ints=False) or ())
        source = state.iter_lp_enrollments(
            array_param(request, "learning_plan_id"), array_param(request, "user_id"), statuses,
            updated_from=state.changed_since(request.query_params.get("updated_from")),
        )
        return paged(request, source, lambda r: lp_enrollment_item(r, extra))

    # -- external training --------------------------------------------------------------------------

    async def list_trainings(request: Request) -> Response:
        return paged(request, state.iter_trainings(array_param(request, "user_id")), training_item)

    async def create_training(request: Request) -> Response:
        rec = state.create_training(await json_body(request))
        return single({"id": rec["id"]}, status=201)

    async def update_training(request: Request) -> Response:
        rec = state.update_training(request.path_params["training_id"], await json_body(request))
        return single({"id": rec["id"]})

    async def delete_training(request: Request) -> Response:
        state.delete_training(request.path_params["training_id"])
        return single([])

    # -- certifications -----------------------------------------------------------------------------

    async def list_certs(request: Request) -> Response:
        return paged(request, [state.certifications[c] for c in sorted(state.certifications)], cert_item)

    async def list_awards(request: Request) -> Response:
        source = state.iter_awards(
            array_param(request, "user_id"), array_param(request, "id_cert"),
            updated_from=state.changed_since(request.query_params.get("updated_from")),
        )
        return paged(request, source, award_item)

    async def get_award(request: Request) -> Response:
        return single(award_item(state.get_award(request.path_params["award_id"])))

    async def create_award(request: Request) -> Response:
        rec = state.create_award(await json_body(request))
        return single({"id_award": rec["id_award"]}, status=201)

    async def update_award(request: Request) -> Response:
        rec = state.update_award(request.path_params["award_id"], await json_body(request))
        return single({"id_award": rec["id_award"]})

    async def delete_award(request: Request) -> Response:
        state.revoke_award(request.path_params["award_id"])
        return single([])

    # -- control endpoints ---------------------------------------------------------------------------

    def ok(data: Any = None, status: int = 200) -> JSONResponse:
        return JSONResponse({"ok": True, **({"data": data} if data is not None else {})}, status_code=status)

    async def c_info(request: Request) -> Response:
        return JSONResponse(
            {
                "base_url": str(request.base_url).rstrip("/"),
                "client_id": state.client_id,
                "client_secret": state.client_secret,
                "admin_username": state.admin_username,
                "admin_password": state.admin_password,
                "token_lifetime_s": state.token_lifetime_s,
                "user_id_as_string": state.user_id_as_string,
                "retry_after_header": state.retry_after_header,
                "counts": state.summary(),
                "webhook": hooks.settings(),
                "faults": faults.to_dict(),
            }
        )

    async def c_reset(request: Request) -> Response:
        def forget_webhooks() -> None:
            hooks.discard()
            sender.deliveries.clear()
            hooks.messages.clear()

        reset_parts(await json_body(request), state=state, calls=calls, faults=faults, webhook=forget_webhooks)
        return await c_info(request)

    async def c_calls(request: Request) -> Response:
        if request.method == "DELETE":
            calls.reset()
            return Response(status_code=204)
        return JSONResponse({"calls": calls.snapshot(), "statuses": calls.statuses(), "total": calls.total()})

    async def c_faults(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse(faults.to_dict())
        try:
            faults.apply(await json_body(request))
        except (ValueError, TypeError) as exc:
            raise DoceboError(400, str(exc)) from None
        return JSONResponse(faults.to_dict())

    async def c_rate_limit(request: Request) -> Response:
        body = await json_body(request)
        enabled = bool(body.get("enabled", True))
        per_hour = as_int(body.get("per_hour", DOCEBO_RATE_LIMIT_PER_HOUR), "per_hour")
        if per_hour < 1:
            raise DoceboError(400, "per_hour must be 1 or more")
        faults.update(rate_limit=per_hour if enabled else None, rate_window_s=3600)
        if "retry_after" in body:
            state.retry_after_header = bool(body["retry_after"])
        return JSONResponse({"enabled": enabled, "per_hour": per_hour, "retry_after": state.retry_after_header})

    async def c_config(request: Request) -> Response:
        body = await json_body(request)
        if "token_lifetime_s" in body:
            lifetime = as_int(body["token_lifetime_s"], "token_lifetime_s")
            if lifetime < 1:
                raise DoceboError(400, "token_lifetime_s must be 1 or more")
            state.token_lifetime_s = lifetime
        if "user_id_as_string" in body:
            state.user_id_as_string = bool(body["user_id_as_string"])
        if "updated_from_filter" in body:
            state.honour_updated_from = bool(body["updated_from_filter"])
        return JSONResponse({"token_lifetime_s": state.token_lifetime_s, "user_id_as_string": state.user_id_as_string,
                             "updated_from_filter": state.honour_updated_from})

    async def c_clock(request: Request) -> Response:
        if request.method != "GET":
            body = await json_body(request)
            try:
                seconds = float(body.get("advance_s", 0))
            except (TypeError, ValueError):
                raise DoceboError(400, "advance_s must be a number of seconds") from None
            state.advance(seconds)
        return JSONResponse({"now": state.now().strftime("%Y-%m-%d %H:%M:%S"),
                             "offset_s": state.time_offset.total_seconds()})

    async def c_expire(request: Request) -> Response:
        return ok({"expired": state.expire_tokens()})

    async def c_token(request: Request) -> Response:
        body = await json_body(request)
        expired = state.expire_tokens() if body.get("expired") else 0
        return JSONResponse({"tokens": len(state.tokens), "expired": expired, "token_lifetime_s": state.token_lifetime_s})

    async def c_webhook(request: Request) -> Response:
        if request.method in ("PUT", "POST"):
            hooks.configure(await json_body(request))
        elif request.method == "DELETE":
            hooks.configure({"url": None})
            hooks.discard()
        return JSONResponse(hooks.settings())

    async def c_flush(request: Request) -> Response:
        return ok({"messages": hooks.flush()})

    async def c_deliveries(request: Request) -> Response:
        out = []
        for d in list(sender.deliveries):
            out.append(
                {
                    "url": d.url,
                    "message_id": d.payload.get("message_id") if isinstance(d.payload, dict) else None,
                    "event": d.payload.get("event") if isinstance(d.payload, dict) else None,
                    "delivered": d.delivered,
                    "gave_up": d.gave_up,
                    "attempts": [{"status": a.status, "error": a.error, "at": a.at} for a in d.attempts],
                }
            )
        return JSONResponse({"deliveries": out, "outstanding": sender.outstanding})

    async def c_complete(request: Request) -> Response:
        body = await json_body(request)
        batch = "completions" in body
        entries = body["completions"] if batch else [body]
        if not isinstance(entries, list) or not entries:
            raise DoceboError(400, "Send {course_id, user_id} or {completions: [...]}")
        for e in entries:  # validate everything before changing anything
            if not isinstance(e, dict):
                raise DoceboError(400, "Each completion must be an object {course_id, user_id}")
            state.get_course(e.get("course_id"))
            state.get_user(e.get("user_id"))
        done = []
        for e in entries:
            state.enroll(e["course_id"], e["user_id"])
            rec = state.set_enrollment(
                e["course_id"], e["user_id"], status="completed", date_complete=e.get("completion_date"), batch=batch
            )
            done.append(enrollment_item(rec, set()))
        return ok(done)

    async def c_enroll(request: Request) -> Response:
        body = await json_body(request)
        if body.get("learning_plan_id") is not None:
            rec, created = state.enroll_learning_plan(body["learning_plan_id"], body.get("user_id"))
            return ok({"created": created, "enrollment": lp_enrollment_item(rec, set(LP_EXTRA))})
        rec, created = state.enroll(body.get("course_id"), body.get("user_id"))
        return ok({"created": created, "enrollment": enrollment_item(rec, set())})

    async def c_awards(request: Request) -> Response:
        if request.method == "POST":
            rec = state.create_award(await json_body(request))
        elif request.method == "PUT":
            rec = state.update_award(request.path_params["award_id"], await json_body(request))
        else:
            rec = state.revoke_award(request.path_params["award_id"])
        return ok(award_item(rec))

    async def c_course_value(request: Request) -> Response:
        body = await json_body(request)
        if "label" in body and body["label"] is not None:
            value = state.set_course_value(
                request.path_params["course_id"], request.path_params["field_id"], label=str(body["label"])
            )
        else:
            value = state.set_course_value(request.path_params["course_id"], request.path_params["field_id"], body.get("value"))
        return ok({"value": value})

    # -- routing -------------------------------------------------------------------------------------

    api_routes = [
        Route("/oauth2/token", token, methods=["POST"]),
        Route("/manage/v1/user", api(list_users), methods=["GET"]),
        Route("/manage/v1/user/{user_id}", api(get_user), methods=["GET"]),
        Route("/manage/v1/user/{user_id}", api(update_user), methods=["PUT"]),
        Route("/learn/v1/courses", api(list_courses), methods=["GET"]),
        Route("/learn/v1/courses/field", api(list_fields), methods=["GET"]),
        Route("/learn/v1/courses/field", api(create_field), methods=["POST"]),
        Route("/learn/v1/courses/field/{field_id}", api(get_field), methods=["GET"]),
        Route("/learn/v1/courses/field/{field_id}", api(update_field), methods=["PUT"]),
        Route("/learn/v1/courses/field/{field_id}", api(delete_field), methods=["DELETE"]),
        Route("/learn/v1/courses/{course_id}", api(get_course), methods=["GET"]),
        Route("/course/v1/courses", api(list_courses), methods=["GET"]),
        Route("/course/v1/courses/enrollments", api(list_enrollments), methods=["GET"]),
        Route("/course/v1/courses/{course_id}", api(get_course), methods=["GET"]),
        Route("/course/v1/courses/{course_id}/enrollments", api(list_enrollments), methods=["GET"]),
        Route("/learn/v1/enrollments", api(create_enrollments), methods=["POST"]),
        Route("/learn/v1/enrollments/{course_id}/{user_id}", api(get_enrollment), methods=["GET"]),
        Route("/learn/v1/enrollments/{course_id}/{user_id}", api(update_enrollment), methods=["PUT"]),
        Route("/learningplan/v1/learningplans", api(list_lps), methods=["GET"]),
        Route("/learningplan/v1/learningplans/enrollments", api(lp_enrollments), methods=["GET"]),
        Route("/learningplan/v1/learningplans/{lp_id}", api(get_lp), methods=["GET"]),
        Route("/learningplan/v1/learningplans/{lp_id}/courses", api(lp_courses), methods=["GET"]),
        Route("/learn/v1/external_training", api(list_trainings), methods=["GET"]),
        Route("/learn/v1/external_training", api(create_training), methods=["POST"]),
        Route("/learn/v1/external_training/{training_id}", api(update_training), methods=["PUT"]),
        Route("/learn/v1/external_training/{training_id}", api(delete_training), methods=["DELETE"]),
        Route("/learn/v1/certification", api(list_certs), methods=["GET"]),
        Route("/certification/v1/awards", api(list_awards), methods=["GET"]),
        Route("/certification/v1/awards", api(create_award), methods=["POST"]),
        Route("/certification/v1/awards/{award_id}", api(get_award), methods=["GET"]),
        Route("/certification/v1/awards/{award_id}", api(update_award), methods=["PUT"]),
        Route("/certification/v1/awards/{award_id}", api(delete_award), methods=["DELETE"]),
    ]
    control_routes = [
        Route("/_sandbox", c_info, methods=["GET"]),
        Route("/_sandbox/reset", c_reset, methods=["POST"]),
        Route("/_sandbox/calls", c_calls, methods=["GET", "DELETE"]),
        Route("/_sandbox/faults", c_faults, methods=["GET", "POST", "PUT"]),
        Route("/_sandbox/rate-limit", c_rate_limit, methods=["PUT"]),
        Route("/_sandbox/config", c_config, methods=["PUT"]),
        Route("/_sandbox/clock", c_clock, methods=["GET", "PUT", "POST"]),
        Route("/_sandbox/tokens/expire", c_expire, methods=["POST"]),
        Route("/_sandbox/token", c_token, methods=["PUT", "POST"]),
        Route("/_sandbox/webhook", c_webhook, methods=["GET", "PUT", "POST", "DELETE"]),
        Route("/_sandbox/webhook/flush", c_flush, methods=["POST"]),
        Route("/_sandbox/webhook/deliveries", c_deliveries, methods=["GET"]),
        Route("/_sandbox/learner/complete", c_complete, methods=["POST"]),
        Route("/_sandbox/learner/enroll", c_enroll, methods=["POST"]),
        Route("/_sandbox/admin/awards", c_awards, methods=["POST"]),
        Route("/_sandbox/admin/awards/{award_id}", c_awards, methods=["PUT", "DELETE"]),
        Route("/_sandbox/admin/courses/{course_id}/fields/{field_id}", c_course_value, methods=["PUT"]),
    ]

    async def on_docebo_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DoceboError)
        return _error_response(exc.status, exc.message)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        status = exc.status_code
        message = {
            404: f"Route {request.url.path} not found",
            405: f"Method {request.method} not allowed on {request.url.path}",
        }.get(status, str(exc.detail))
        response = _error_response(status, message)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        sender.bind_loop(asyncio.get_running_loop())
        try:
            yield
        finally:
            hooks.flush()
            with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
                await asyncio.wait_for(sender.drain(), timeout=2.0)
            await sender.aclose()

    routes = api_routes + control_routes
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(DateHeader, now=state.now),
            Middleware(_RetryAfterSwitch, state=state),
            Middleware(SandboxMiddleware, routes=routes, faults=faults, calls=calls, error_body=error_body),
        ],
        exception_handlers={DoceboError: on_docebo_error, HTTPException: on_http_error},
        lifespan=lifespan,
    )
    app.state.sandbox = SandboxHandles(state=state, faults=faults, calls=calls, webhooks=sender)
    app.state.docebo_webhooks = hooks
    return app


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


__all__ = [
    "API_VERSION",
    "DOCEBO_RATE_LIMIT_PER_HOUR",
    "DoceboWebhooks",
    "create_docebo_app",
    "error_body",
    "message_id",
    "paged",
]
