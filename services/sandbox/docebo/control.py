"""The Docebo sandbox's control routes under ``/_sandbox/`` (not part of Docebo; no auth;
neither counted nor faulted): credentials and counts, reset, call counters, faults, rate limit,
tenant config, clock, token expiry, webhook settings and log, and acting as the learner or the
admin (complete, enroll, award, set a course's field). Bodies and answers: docs/sandboxes.md.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.sandbox.common import reset_parts
from services.sandbox.docebo.records import DoceboError, as_int
from services.sandbox.docebo.routes import handles, tenant
from services.sandbox.docebo.webhooks import DoceboWebhooks
from services.sandbox.docebo.wire import LP_EXTRA, award_item, enrollment_item, json_body, lp_enrollment_item

DOCEBO_RATE_LIMIT_PER_HOUR = 1000


def dispatcher(request: Request) -> DoceboWebhooks:
    """The app's webhook dispatcher (``app.state.docebo_webhooks``)."""
    return request.app.state.docebo_webhooks


def _ok(data: Any = None, status: int = 200) -> JSONResponse:
    return JSONResponse({"ok": True, **({"data": data} if data is not None else {})}, status_code=status)


async def c_info(request: Request) -> Response:
    state = tenant(request)
    hooks = dispatcher(request)
    faults = handles(request).faults
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
    sandbox = handles(request)
    hooks = dispatcher(request)

    def forget_webhooks() -> None:
        hooks.discard()
        sandbox.webhooks.deliveries.clear()
        hooks.messages.clear()

    body = await json_body(request)
    reset_parts(body, state=sandbox.state, calls=sandbox.calls, faults=sandbox.faults, webhook=forget_webhooks)
    return await c_info(request)


async def c_calls(request: Request) -> Response:
    calls = handles(request).calls
    if request.method == "DELETE":
        calls.reset()
        return Response(status_code=204)
    return JSONResponse({"calls": calls.snapshot(), "statuses": calls.statuses(), "total": calls.total()})


async def c_faults(request: Request) -> Response:
    faults = handles(request).faults
    if request.method == "GET":
        return JSONResponse(faults.to_dict())
    try:
        faults.apply(await json_body(request))
    except (ValueError, TypeError) as exc:
        raise DoceboError(400, str(exc)) from None
    return JSONResponse(faults.to_dict())


async def c_rate_limit(request: Request) -> Response:
    state = tenant(request)
    faults = handles(request).faults
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
    state = tenant(request)
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
    state = tenant(request)
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
    state = tenant(request)
    return _ok({"expired": state.expire_tokens()})


async def c_token(request: Request) -> Response:
    state = tenant(request)
    body = await json_body(request)
    expired = state.expire_tokens() if body.get("expired") else 0
    return JSONResponse({"tokens": len(state.tokens), "expired": expired, "token_lifetime_s": state.token_lifetime_s})


async def c_webhook(request: Request) -> Response:
    hooks = dispatcher(request)
    if request.method in ("PUT", "POST"):
        hooks.configure(await json_body(request))
    elif request.method == "DELETE":
        hooks.configure({"url": None})
        hooks.discard()
    return JSONResponse(hooks.settings())


async def c_flush(request: Request) -> Response:
    hooks = dispatcher(request)
    return _ok({"messages": hooks.flush()})


async def c_deliveries(request: Request) -> Response:
    sender = handles(request).webhooks
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
    state = tenant(request)
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
        done.append(enrollment_item(state, rec, set()))
    return _ok(done)


async def c_enroll(request: Request) -> Response:
    state = tenant(request)
    body = await json_body(request)
    if body.get("learning_plan_id") is not None:
        rec, created = state.enroll_learning_plan(body["learning_plan_id"], body.get("user_id"))
        return _ok({"created": created, "enrollment": lp_enrollment_item(state, rec, set(LP_EXTRA))})
    rec, created = state.enroll(body.get("course_id"), body.get("user_id"))
    return _ok({"created": created, "enrollment": enrollment_item(state, rec, set())})


async def c_awards(request: Request) -> Response:
    state = tenant(request)
    if request.method == "POST":
        rec = state.create_award(await json_body(request))
    elif request.method == "PUT":
        rec = state.update_award(request.path_params["award_id"], await json_body(request))
    else:
        rec = state.revoke_award(request.path_params["award_id"])
    return _ok(award_item(state, rec))


async def c_course_value(request: Request) -> Response:
    state = tenant(request)
    body = await json_body(request)
    if "label" in body and body["label"] is not None:
        value = state.set_course_value(
            request.path_params["course_id"], request.path_params["field_id"], label=str(body["label"])
        )
    else:
        value = state.set_course_value(request.path_params["course_id"], request.path_params["field_id"], body.get("value"))
    return _ok({"value": value})


CONTROL_ROUTES = [
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

__all__ = ["CONTROL_ROUTES", "DOCEBO_RATE_LIMIT_PER_HOUR"]
