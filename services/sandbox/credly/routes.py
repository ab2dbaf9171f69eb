"""The Credly sandbox: a Starlette app speaking the Credly Web Service API as credly.md describes
it (§1 conventions, §2 templates, §3 issued badges, §4 events and webhooks), plus control
endpoints under ``/_sandbox/`` for tests and the demo.

``create_credly_app(state, faults=None)``; base URL ``http://<host>:<port>/v1``. In-process,
``app.state.sandbox`` is a ``SandboxHandles(state, faults, calls, webhooks)``.

API routes (every one needs HTTP Basic with the token as user name, credly.md §1.3):

    GET    /v1/organizations
    GET    /v1/organizations/{org}                 PUT  (webhook_url)
    GET    /v1/organizations/{org}/badge_templates
    GET    /v1/organizations/{org}/badge_templates/{template_id}
    GET    /v1/organizations/{org}/badges           POST (issue, 201)
    POST   /v1/organizations/{org}/badges/batch     (201; 422 with data.error_index)
    PUT    /v1/organizations/{org}/badges/{badge_id}/revoke    (200)
    POST   /v1/organizations/{org}/badges/{badge_id}/replace   (201)
    DELETE /v1/organizations/{org}/badges/{badge_id}           (204)
    GET    /v1/organizations/{org}/events
    GET    /v1/organizations/{org}/events/{event_id}

Bodies may be JSON or form-encoded; query parameters are merged under the body's (credly.md §7).
A trailing slash is tolerated. Lists hold 50 items per page (``per`` may lower it) with the
metadata keys of credly.md §1.4 and absolute page URLs that keep ``filter``, ``sort`` and ``per``.
An unknown or foreign organisation id answers 404 [I]; a missing, wrong or expired token 401.

Control routes (no auth; loopback only; not part of the real API):

    GET    /_sandbox                          summary (ids, token, counts, webhook, faults)
    POST   /_sandbox/templates                create {name, state?, allow_duplicate_badges?,
                                              description?, default_expires_in_days?, id?}
    PATCH  /_sandbox/templates/{id}           rename / change {name?, state?, ...} (PUT too)
    POST   /_sandbox/templates/{id}/archive   state archived
    DELETE /_sandbox/templates/{id}           delete (only without badges)
    POST   /_sandbox/badges                   issue by hand {badge_template_id, recipient_email,
                                              issued_to_first_name, issued_to_last_name,
                                              issued_at? (now), expires_at?, state? pending|accepted,
                                              allow_duplicate?}; never carries issuer_earner_id
    POST   /_sandbox/badges/{id}/accept       as the earner
    POST   /_sandbox/badges/{id}/reject       as the earner
    GET    /_sandbox/webhook                  {url, outstanding, deliveries}
    PUT    /_sandbox/webhook                  {url, retry_delays?, max_attempts?}
    GET    /_sandbox/faults                   current FaultConfig
    PUT    /_sandbox/faults                   {seed?, latency_ms?, jitter_ms?, fail_rate?,
                                              fail_status?, drop_rate?, rate_limit?,
                                              rate_window_s?, force?: {kind, route?, times?,
                                              status?} or a list, reset?: true}
    GET    /_sandbox/calls                    {"calls": {route: n}, "statuses": ..., "total": n}
    DELETE /_sandbox/calls                    reset the counters
    PUT    /_sandbox/token                    {token?, expired?}
    POST   /_sandbox/reset                    {state?, calls?, faults?, webhook?} (all true by
                                              default): back to the data the app started with
    GET    /_sandbox/clock                    the organisation's clock {now, offset_s}
    PUT    /_sandbox/clock                    {advance_s}: time travel forward (timestamps of
                                              changes and the Date header)
    PUT    /_sandbox/config                   {date_filters: false}: accept and ignore the
                                              created_at/updated_at _min/_max filters

Every response carries a ``Date`` header from the organisation's clock. Lists take the date-range
filters ``created_at_min``, ``created_at_max``, ``updated_at_min``, ``updated_at_max`` (credly.md
§2.2 for templates; by analogy for badges [INF]): a ``YYYY-MM-DD`` value compares whole days, a
date-time compares instants, both inclusive.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import math
from collections.abc import Awaitable, Callable
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
    only_200,
    reset_parts,
)
from services.sandbox.credly.state import CredlyError, CredlyState, iso, parse_filter, parse_sort

PER_PAGE = 50
ORG = "/v1/organizations/{org}"

Handler = Callable[[Request], Awaitable[Response]]


def error_body(status: int, message: str) -> dict[str, Any]:
    """credly.md §1.4: ``{"data": {"message": ...}, "metadata": null}``."""
    return {"data": {"message": message}, "metadata": None}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message), status_code=status, headers=headers)


def _one(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse({"data": data, "metadata": {}}, status_code=status)


def create_credly_app(
    state: CredlyState,
    faults: FaultConfig | None = None,
    *,
    webhooks: WebhookSender | None = None,
    webhook_url: str | None = None,
    calls: RouteCounter | None = None,
) -> Starlette:
    """The Credly sandbox over ``state``. ``webhooks`` defaults to a sender that counts only
    HTTP 200 as delivered (credly.md §4.1) aimed at ``webhook_url`` (None = off)."""
    faults = faults if faults is not None else FaultConfig()
    calls = calls if calls is not None else RouteCounter()
    sender = webhooks if webhooks is not None else WebhookSender(webhook_url, accept=only_200)
    if webhooks is not None and webhook_url is not None:
        sender.url = webhook_url
    handles = SandboxHandles(state=state, faults=faults, calls=calls, webhooks=sender)

    def on_event(event: Any) -> None:
        if sender.url:
            sender.send(state.notice(event))

    state.listeners.append(on_event)

    # -- helpers ------------------------------------------------------------------------------

    def authorised(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded.strip():
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=False).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user = decoded.split(":", 1)[0]  # "token:" and the no-colon "token" both work (§1.3)
        return bool(user) and user == state.token and not state.token_expired

    def api(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            if not authorised(request):
                return _error(
                    401,
                    "You must provide a valid authorization token",
                    {"WWW-Authenticate": 'Basic realm="Credly API"'},
                )
            org = request.path_params.get("org")
            if org is not None and org != state.organization_id:
                return _error(404, "Organization not found")
            try:
                return await handler(request)
            except CredlyError as exc:
                return JSONResponse(exc.body(), status_code=exc.status)

        endpoint.__name__ = handler.__name__
        return endpoint

    async def params(request: Request) -> dict[str, Any]:
        """Body (JSON or form) over query parameters."""
        merged: dict[str, Any] = dict(request.query_params)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.form()
            merged.update({k: v for k, v in form.items() if isinstance(v, str)})
            return merged
        raw = await request.body()
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                raise CredlyError(400, "The request body is not valid JSON") from None
            if not isinstance(body, dict):
                raise CredlyError(400, "The request body must be a JSON object")
            merged.update(body)
        return merged

    def paged(request: Request, items: list, render: Callable[[Any], dict]) -> JSONResponse:
        q = request.query_params
        per = _int(q.get("per"), PER_PAGE)
        per = min(max(per, 1), PER_PAGE)
        page = max(_int(q.get("page"), 1), 1)
        total = len(items)
        total_pages = math.ceil(total / per)
        chunk = items[(page - 1) * per : page * per]

        def url(n: int) -> str:
            return str(request.url.include_query_params(page=n))

        return JSONResponse(
            {
                "data": [render(x) for x in chunk],
                "metadata": {
                    "count": len(chunk),
                    "current_page": page,
                    "total_count": total,
                    "total_pages": total_pages,
                    "per": per,
                    "previous_page_url": url(page - 1) if page > 1 else None,
                    "next_page_url": url(page + 1) if page < total_pages else None,
                },
            }
        )

    def query(request: Request) -> tuple[dict[str, list[str]], list[tuple[str, bool]]]:
        return parse_filter(request.query_params.get("filter")), parse_sort(request.query_params.get("sort"))

    # -- API ----------------------------------------------------------------------------------

    async def list_organizations(request: Request) -> Response:
        return paged(request, [None], lambda _: state.organization_json(sender.url))

    async def get_organization(request: Request) -> Response:
        return _one(state.organization_json(sender.url))

    async def update_organization(request: Request) -> Response:
        body = await params(request)
        if "webhook_url" in body:
            url = body["webhook_url"]
            sender.url = None if url in (None, "") else str(url)
        if body.get("name"):
            state.organization_name = str(body["name"])
        return _one(state.organization_json(sender.url))

    async def list_templates(request: Request) -> Response:
        filters, sort = query(request)
        return paged(request, state.query_templates(filters, sort), state.template_json)

    async def get_template(request: Request) -> Response:
        return _one(state.template_json(state.get_template(request.path_params["template_id"])))

    async def list_badges(request: Request) -> Response:
        filters, sort = query(request)
        return paged(request, state.query_badges(filters, sort), state.badge_json)

    async def issue_badge(request: Request) -> Response:
        badge = state.issue(await params(request))
        return _one(state.badge_json(badge), 201)

    async def issue_batch(request: Request) -> Response:
        body = await params(request)
        items = body.get("badges")
        badges = state.issue_batch(items if isinstance(items, list) else [])
        return JSONResponse({"data": [state.badge_json(b) for b in badges], "metadata": {}}, status_code=201)

    async def revoke_badge(request: Request) -> Response:
        body = await params(request)
        badge = state.revoke(
            request.path_params["badge_id"],
            body.get("reason"),
            suppress_notification=body.get("suppress_revoke_notification_email", False),
        )
        return _one(state.badge_json(badge))

    async def replace_badge(request: Request) -> Response:
        badge = state.replace(request.path_params["badge_id"], await params(request))
        return _one(state.badge_json(badge), 201)

    async def delete_badge(request: Request) -> Response:
        state.delete_badge(request.path_params["badge_id"])
        return Response(status_code=204)

    async def list_events(request: Request) -> Response:
        return paged(request, state.list_events(), state.event_json)

    async def get_event(request: Request) -> Response:
        return _one(state.event_json(state.get_event(request.path_params["event_id"])))

    api_routes = [
        Route("/v1/organizations", api(list_organizations), methods=["GET"]),
        Route(ORG, api(get_organization), methods=["GET"]),
        Route(ORG, api(update_organization), methods=["PUT"]),
        Route(ORG + "/badge_templates", api(list_templates), methods=["GET"]),
        Route(ORG + "/badge_templates/{template_id}", api(get_template), methods=["GET"]),
        Route(ORG + "/badges", api(list_badges), methods=["GET"]),
        Route(ORG + "/badges", api(issue_badge), methods=["POST"]),
        Route(ORG + "/badges/batch", api(issue_batch), methods=["POST"]),
        Route(ORG + "/badges/{badge_id}/revoke", api(revoke_badge), methods=["PUT"]),
        Route(ORG + "/badges/{badge_id}/replace", api(replace_badge), methods=["POST"]),
        Route(ORG + "/badges/{badge_id}", api(delete_badge), methods=["DELETE"]),
        Route(ORG + "/events", api(list_events), methods=["GET"]),
        Route(ORG + "/events/{event_id}", api(get_event), methods=["GET"]),
    ]

    # -- control ------------------------------------------------------------------------------

    def control(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except CredlyError as exc:
                return JSONResponse(exc.body(), status_code=exc.status)
            except (ValueError, TypeError) as exc:
                return _error(400, str(exc))

        endpoint.__name__ = handler.__name__
        return endpoint

    async def summary(request: Request) -> Response:
        return JSONResponse(
            {
                "organization_id": state.organization_id,
                "token": state.token,
                "token_expired": state.token_expired,
                "templates": len(state.templates),
                "badges": len(state.badges),
                "events": len(state.events),
                "webhook_url": sender.url,
                "faults": _faults_json(faults),
            }
        )

    async def ctl_create_template(request: Request) -> Response:
        body = await params(request)
        template = state.add_template(
            body.get("name", ""),
            state=body.get("state", "active"),
            allow_duplicate_badges=body.get("allow_duplicate_badges", False),
            description=body.get("description", ""),
            default_expires_in_days=body.get("default_expires_in_days"),
            template_id=body.get("id"),
        )
        return _one(state.template_json(template), 201)

    async def ctl_update_template(request: Request) -> Response:
        body = await params(request)
        template = state.update_template(request.path_params["template_id"], **body)
        return _one(state.template_json(template))

    async def ctl_archive_template(request: Request) -> Response:
        template = state.update_template(request.path_params["template_id"], state="archived")
        return _one(state.template_json(template))

    async def ctl_delete_template(request: Request) -> Response:
        state.delete_template(request.path_params["template_id"])
        return Response(status_code=204)

    async def ctl_issue_badge(request: Request) -> Response:
        body = await params(request)
        wanted_state = str(body.pop("state", "pending"))
        if wanted_state not in ("pending", "accepted"):
            raise CredlyError(422, "A badge issued by hand starts pending or accepted")
        force = bool(body.pop("allow_duplicate", False))
        body.pop("issuer_earner_id", None)  # a badge issued in Credly's UI has none
        body.setdefault("issued_at", iso(state.now()))
        badge = state.issue(body, check_duplicates=not force)
        if wanted_state == "accepted":
            badge = state.earner_decides(badge.id, accept=True)
        return _one(state.badge_json(badge), 201)

    async def ctl_accept(request: Request) -> Response:
        return _one(state.badge_json(state.earner_decides(request.path_params["badge_id"], True)))

    async def ctl_reject(request: Request) -> Response:
        return _one(state.badge_json(state.earner_decides(request.path_params["badge_id"], False)))

    async def ctl_get_webhook(request: Request) -> Response:
        return JSONResponse(
            {
                "url": sender.url,
                "outstanding": sender.outstanding,
                "deliveries": [
                    {
                        "url": d.url,
                        "payload": d.payload,
                        "delivered": d.delivered,
                        "gave_up": d.gave_up,
                        "attempts": [{"status": a.status, "error": a.error} for a in d.attempts],
                    }
                    for d in list(sender.deliveries)
                ],
            }
        )

    async def ctl_set_webhook(request: Request) -> Response:
        body = await params(request)
        delays = body.get("retry_delays")
        sender.configure(
            url=(body.get("url") or None) if "url" in body else sender.url,
            retry_delays=[float(d) for d in delays] if isinstance(delays, list) else None,
            max_attempts=int(body["max_attempts"]) if body.get("max_attempts") else None,
        )
        return await ctl_get_webhook(request)

    async def ctl_get_faults(request: Request) -> Response:
        return JSONResponse(_faults_json(faults))

    async def ctl_set_faults(request: Request) -> Response:
        faults.apply(await params(request))
        return JSONResponse(_faults_json(faults))

    async def ctl_calls(request: Request) -> Response:
        return JSONResponse({"calls": calls.snapshot(), "statuses": _statuses_json(calls), "total": calls.total()})

    async def ctl_reset_calls(request: Request) -> Response:
        calls.reset()
        return Response(status_code=204)

    async def ctl_token(request: Request) -> Response:
        body = await params(request)
        if body.get("token"):
            state.token = str(body["token"])
        if "expired" in body:
            state.token_expired = bool(body["expired"])
        return JSONResponse({"token": state.token, "expired": state.token_expired})

    async def ctl_clock(request: Request) -> Response:
        if request.method != "GET":
            body = await params(request)
            state.advance(float(body.get("advance_s", 0)))
        return JSONResponse({"now": iso(state.now()), "offset_s": state.time_offset.total_seconds()})

    async def ctl_config(request: Request) -> Response:
        body = await params(request)
        if "date_filters" in body:
            state.honour_date_filters = bool(body["date_filters"])
        return JSONResponse({"date_filters": state.honour_date_filters})

    async def ctl_reset(request: Request) -> Response:
        reset_parts(await params(request), state=state, calls=calls, faults=faults, webhook=sender.deliveries.clear)
        return await summary(request)

    control_routes = [
        Route("/_sandbox", control(summary), methods=["GET"]),
        Route("/_sandbox/templates", control(ctl_create_template), methods=["POST"]),
        Route("/_sandbox/templates/{template_id}", control(ctl_update_template), methods=["PATCH", "PUT"]),
        Route("/_sandbox/templates/{template_id}", control(ctl_delete_template), methods=["DELETE"]),
        Route("/_sandbox/templates/{template_id}/archive", control(ctl_archive_template), methods=["POST"]),
        Route("/_sandbox/badges", control(ctl_issue_badge), methods=["POST"]),
        Route("/_sandbox/badges/{badge_id}/accept", control(ctl_accept), methods=["POST"]),
        Route("/_sandbox/badges/{badge_id}/reject", control(ctl_reject), methods=["POST"]),
        Route("/_sandbox/webhook", control(ctl_get_webhook), methods=["GET"]),
        Route("/_sandbox/webhook", control(ctl_set_webhook), methods=["PUT", "POST"]),
        Route("/_sandbox/faults", control(ctl_get_faults), methods=["GET"]),
        Route("/_sandbox/faults", control(ctl_set_faults), methods=["PUT", "POST"]),
        Route("/_sandbox/calls", control(ctl_calls), methods=["GET"]),
        Route("/_sandbox/calls", control(ctl_reset_calls), methods=["DELETE"]),
        Route("/_sandbox/token", control(ctl_token), methods=["PUT", "POST"]),
        Route("/_sandbox/reset", control(ctl_reset), methods=["POST"]),
        Route("/_sandbox/clock", control(ctl_clock), methods=["GET", "PUT", "POST"]),
        Route("/_sandbox/config", control(ctl_config), methods=["PUT"]),
    ]

    # -- app ----------------------------------------------------------------------------------

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return _error(404, "Not found")
        if exc.status_code == 405:
            return _error(405, "Method not allowed", dict(exc.headers or {}))
        return _error(exc.status_code, str(exc.detail))

    async def server_error(request: Request, exc: Exception) -> Response:
        return _error(500, "Internal server error")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        sender.bind_loop()
        try:
            yield
        finally:
            await sender.aclose()

    routes = api_routes + control_routes
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(DateHeader, now=state.now),
            Middleware(
                SandboxMiddleware,
                routes=routes,
                faults=faults,
                calls=calls,
                error_body=error_body,
                strip_trailing_slash=True,
            )
        ],
        exception_handlers={HTTPException: http_error, 500: server_error},
        lifespan=lifespan,
    )
    app.state.sandbox = handles
    return app


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _faults_json(faults: FaultConfig) -> dict[str, Any]:
    return faults.to_dict()


def _statuses_json(calls: RouteCounter) -> dict[str, dict[str, int]]:
    return {route: {str(k): v for k, v in per.items()} for route, per in calls.statuses().items()}


__all__ = ["create_credly_app", "error_body", "PER_PAGE"]
