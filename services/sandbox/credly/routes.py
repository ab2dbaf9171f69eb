"""The Credly API routes of the sandbox (credly.md §1.3 auth, §2 templates, §3 badges, §4 events):
plain handlers that read the app's ``SandboxHandles`` from ``request.app.state.sandbox``. Every
route needs HTTP Basic with the token as user name; an unknown or foreign organisation answers
404 [I]; a ``CredlyError`` becomes its status and body. Route list: docs/sandboxes.md.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Awaitable, Callable
from functools import partial

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.sandbox.common import SandboxHandles
from services.sandbox.credly.records import CredlyError
from services.sandbox.credly.state import CredlyState
from services.sandbox.credly.wire import (
    badge_json,
    error_response,
    event_json,
    list_query,
    one,
    organization_json,
    paged,
    read_params,
    template_json,
)

ORG = "/v1/organizations/{org}"

Handler = Callable[[Request], Awaitable[Response]]


def handles(request: Request) -> SandboxHandles:
    """The serving app's state, faults, counters and webhook sender."""
    return request.app.state.sandbox


def organisation(request: Request) -> CredlyState:
    return handles(request).state


def authorised(state: CredlyState, request: Request) -> bool:
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
    """Token check, organisation check and ``CredlyError`` answers around an API handler."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        state = organisation(request)
        if not authorised(state, request):
            return error_response(
                401,
                "You must provide a valid authorization token",
                {"WWW-Authenticate": 'Basic realm="Credly API"'},
            )
        org = request.path_params.get("org")
        if org is not None and org != state.organization_id:
            return error_response(404, "Organization not found")
        try:
            return await handler(request)
        except CredlyError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)

    return endpoint


@api
async def list_organizations(request: Request) -> Response:
    sandbox = handles(request)
    return paged(request, [None], lambda _: organization_json(sandbox.state, sandbox.webhooks.url))


@api
async def get_organization(request: Request) -> Response:
    sandbox = handles(request)
    return one(organization_json(sandbox.state, sandbox.webhooks.url))


@api
async def update_organization(request: Request) -> Response:
    sandbox = handles(request)
    body = await read_params(request)
    if "webhook_url" in body:
        url = body["webhook_url"]
        sandbox.webhooks.url = None if url in (None, "") else str(url)
    if body.get("name"):
        sandbox.state.organization_name = str(body["name"])
    return one(organization_json(sandbox.state, sandbox.webhooks.url))


@api
async def list_templates(request: Request) -> Response:
    state = organisation(request)
    filters, sort = list_query(request)
    return paged(request, state.query_templates(filters, sort), partial(template_json, state))


@api
async def get_template(request: Request) -> Response:
    state = organisation(request)
    return one(template_json(state, state.get_template(request.path_params["template_id"])))


@api
async def list_badges(request: Request) -> Response:
    state = organisation(request)
    filters, sort = list_query(request)
    return paged(request, state.query_badges(filters, sort), partial(badge_json, state))


@api
async def issue_badge(request: Request) -> Response:
    state = organisation(request)
    badge = state.issue(await read_params(request))
    return one(badge_json(state, badge), 201)


@api
async def issue_batch(request: Request) -> Response:
    state = organisation(request)
    body = await read_params(request)
    items = body.get("badges")
    badges = state.issue_batch(items if isinstance(items, list) else [])
    return JSONResponse({"data": [badge_json(state, b) for b in badges], "metadata": {}}, status_code=201)


@api
async def revoke_badge(request: Request) -> Response:
    state = organisation(request)
    body = await read_params(request)
    badge = state.revoke(
        request.path_params["badge_id"],
        body.get("reason"),
        suppress_notification=body.get("suppress_revoke_notification_email", False),
    )
    return one(badge_json(state, badge))


@api
async def replace_badge(request: Request) -> Response:
    state = organisation(request)
    badge = state.replace(request.path_params["badge_id"], await read_params(request))
    return one(badge_json(state, badge), 201)


@api
async def delete_badge(request: Request) -> Response:
    organisation(request).delete_badge(request.path_params["badge_id"])
    return Response(status_code=204)


@api
async def list_events(request: Request) -> Response:
    state = organisation(request)
    return paged(request, state.list_events(), partial(event_json, state))


@api
async def get_event(request: Request) -> Response:
    state = organisation(request)
    return one(event_json(state, state.get_event(request.path_params["event_id"])))


API_ROUTES = [
    Route("/v1/organizations", list_organizations, methods=["GET"]),
    Route(ORG, get_organization, methods=["GET"]),
    Route(ORG, update_organization, methods=["PUT"]),
    Route(ORG + "/badge_templates", list_templates, methods=["GET"]),
    Route(ORG + "/badge_templates/{template_id}", get_template, methods=["GET"]),
    Route(ORG + "/badges", list_badges, methods=["GET"]),
    Route(ORG + "/badges", issue_badge, methods=["POST"]),
    Route(ORG + "/badges/batch", issue_batch, methods=["POST"]),
    Route(ORG + "/badges/{badge_id}/revoke", revoke_badge, methods=["PUT"]),
    Route(ORG + "/badges/{badge_id}/replace", replace_badge, methods=["POST"]),
    Route(ORG + "/badges/{badge_id}", delete_badge, methods=["DELETE"]),
    Route(ORG + "/events", list_events, methods=["GET"]),
    Route(ORG + "/events/{event_id}", get_event, methods=["GET"]),
]

__all__ = ["API_ROUTES", "ORG", "api", "handles", "organisation"]
