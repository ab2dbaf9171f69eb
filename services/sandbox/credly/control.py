"""The Credly sandbox's control routes under ``/_sandbox/`` (no auth; loopback only; not part of
the real API): act as the Credly admin or the earner, read and set the webhook, faults, call
counters, token, clock and list-filter config, and reset. Bodies and answers: docs/sandboxes.md.
"""

from __future__ import annotations

import functools

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.sandbox.common import reset_parts
from services.sandbox.credly.records import CredlyError, iso
from services.sandbox.credly.routes import Handler, handles, organisation
from services.sandbox.credly.wire import (
    badge_json,
    error_response,
    faults_json,
    one,
    read_params,
    statuses_json,
    template_json,
)


def control(handler: Handler) -> Handler:
    """``CredlyError`` answers as such; a bad value (``ValueError``/``TypeError``) is a 400."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except CredlyError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        except (ValueError, TypeError) as exc:
            return error_response(400, str(exc))

    return endpoint


@control
async def summary(request: Request) -> Response:
    sandbox = handles(request)
    state = sandbox.state
    return JSONResponse(
        {
            "organization_id": state.organization_id,
            "token": state.token,
            "token_expired": state.token_expired,
            "templates": len(state.templates),
            "badges": len(state.badges),
            "events": len(state.events),
            "webhook_url": sandbox.webhooks.url,
            "faults": faults_json(sandbox.faults),
        }
    )


@control
async def create_template(request: Request) -> Response:
    state = organisation(request)
    body = await read_params(request)
    template = state.add_template(
        body.get("name", ""),
        state=body.get("state", "active"),
        allow_duplicate_badges=body.get("allow_duplicate_badges", False),
        description=body.get("description", ""),
        default_expires_in_days=body.get("default_expires_in_days"),
        template_id=body.get("id"),
    )
    return one(template_json(state, template), 201)


@control
async def update_template(request: Request) -> Response:
    state = organisation(request)
    body = await read_params(request)
    template = state.update_template(request.path_params["template_id"], **body)
    return one(template_json(state, template))


@control
async def archive_template(request: Request) -> Response:
    state = organisation(request)
    template = state.update_template(request.path_params["template_id"], state="archived")
    return one(template_json(state, template))


@control
async def delete_template(request: Request) -> Response:
    organisation(request).delete_template(request.path_params["template_id"])
    return Response(status_code=204)


@control
async def issue_badge(request: Request) -> Response:
    state = organisation(request)
    body = await read_params(request)
    wanted_state = str(body.pop("state", "pending"))
    if wanted_state not in ("pending", "accepted"):
        raise CredlyError(422, "A badge issued by hand starts pending or accepted")
    force = bool(body.pop("allow_duplicate", False))
    body.pop("issuer_earner_id", None)  # a badge issued in Credly's UI has none
    body.setdefault("issued_at", iso(state.now()))
    badge = state.issue(body, check_duplicates=not force)
    if wanted_state == "accepted":
        badge = state.earner_decides(badge.id, accept=True)
    return one(badge_json(state, badge), 201)


@control
async def accept_badge(request: Request) -> Response:
    state = organisation(request)
    return one(badge_json(state, state.earner_decides(request.path_params["badge_id"], True)))


@control
async def reject_badge(request: Request) -> Response:
    state = organisation(request)
    return one(badge_json(state, state.earner_decides(request.path_params["badge_id"], False)))


def _webhook_json(request: Request) -> JSONResponse:
    sender = handles(request).webhooks
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


@control
async def get_webhook(request: Request) -> Response:
    return _webhook_json(request)


@control
async def set_webhook(request: Request) -> Response:
    sender = handles(request).webhooks
    body = await read_params(request)
    delays = body.get("retry_delays")
    sender.configure(
        url=(body.get("url") or None) if "url" in body else sender.url,
        retry_delays=[float(d) for d in delays] if isinstance(delays, list) else None,
        max_attempts=int(body["max_attempts"]) if body.get("max_attempts") else None,
    )
    return _webhook_json(request)


@control
async def get_faults(request: Request) -> Response:
    return JSONResponse(faults_json(handles(request).faults))


@control
async def set_faults(request: Request) -> Response:
    faults = handles(request).faults
    faults.apply(await read_params(request))
    return JSONResponse(faults_json(faults))


@control
async def get_calls(request: Request) -> Response:
    calls = handles(request).calls
    return JSONResponse({"calls": calls.snapshot(), "statuses": statuses_json(calls), "total": calls.total()})


@control
async def reset_calls(request: Request) -> Response:
    handles(request).calls.reset()
    return Response(status_code=204)


@control
async def set_token(request: Request) -> Response:
    state = organisation(request)
    body = await read_params(request)
    if body.get("token"):
        state.token = str(body["token"])
    if "expired" in body:
        state.token_expired = bool(body["expired"])
    return JSONResponse({"token": state.token, "expired": state.token_expired})


@control
async def clock(request: Request) -> Response:
    state = organisation(request)
    if request.method != "GET":
        body = await read_params(request)
        state.advance(float(body.get("advance_s", 0)))
    return JSONResponse({"now": iso(state.now()), "offset_s": state.time_offset.total_seconds()})


@control
async def set_config(request: Request) -> Response:
    state = organisation(request)
    body = await read_params(request)
    if "date_filters" in body:
        state.honour_date_filters = bool(body["date_filters"])
    return JSONResponse({"date_filters": state.honour_date_filters})


@control
async def reset(request: Request) -> Response:
    sandbox = handles(request)
    reset_parts(
        await read_params(request),
        state=sandbox.state,
        calls=sandbox.calls,
        faults=sandbox.faults,
        webhook=sandbox.webhooks.deliveries.clear,
    )
    return await summary(request)


CONTROL_ROUTES = [
    Route("/_sandbox", summary, methods=["GET"]),
    Route("/_sandbox/templates", create_template, methods=["POST"]),
    Route("/_sandbox/templates/{template_id}", update_template, methods=["PATCH", "PUT"]),
    Route("/_sandbox/templates/{template_id}", delete_template, methods=["DELETE"]),
    Route("/_sandbox/templates/{template_id}/archive", archive_template, methods=["POST"]),
    Route("/_sandbox/badges", issue_badge, methods=["POST"]),
    Route("/_sandbox/badges/{badge_id}/accept", accept_badge, methods=["POST"]),
    Route("/_sandbox/badges/{badge_id}/reject", reject_badge, methods=["POST"]),
    Route("/_sandbox/webhook", get_webhook, methods=["GET"]),
    Route("/_sandbox/webhook", set_webhook, methods=["PUT", "POST"]),
    Route("/_sandbox/faults", get_faults, methods=["GET"]),
    Route("/_sandbox/faults", set_faults, methods=["PUT", "POST"]),
    Route("/_sandbox/calls", get_calls, methods=["GET"]),
    Route("/_sandbox/calls", reset_calls, methods=["DELETE"]),
    Route("/_sandbox/token", set_token, methods=["PUT", "POST"]),
    Route("/_sandbox/reset", reset, methods=["POST"]),
    Route("/_sandbox/clock", clock, methods=["GET", "PUT", "POST"]),
    Route("/_sandbox/config", set_config, methods=["PUT"]),
]

__all__ = ["CONTROL_ROUTES"]
