"""The Credly wire format (credly.md §1.4): the ``{data, metadata}`` envelope, error bodies,
pages of 50 with absolute page URLs that keep ``filter``, ``sort`` and ``per``, request bodies
(JSON or form, over the query string, §7) and the JSON of organisations, templates, badges and
events, built only for the page being answered.
"""

from __future__ import annotations

import copy
import json
import math
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from services.sandbox.credly.records import (
    TEMPLATE_EPOCH,
    Badge,
    CredlyError,
    Event,
    Template,
    full_name,
    iso,
    iso_date,
    parse_filter,
    parse_sort,
    slugify,
)
from services.sandbox.faults import FaultConfig
from services.sandbox.middleware import RouteCounter

if TYPE_CHECKING:
    from services.sandbox.credly.state import CredlyState

PER_PAGE = 50
WEB_BASE = "https://credly.sandbox.invalid"
IMAGE_BASE = "https://images.credly.sandbox.invalid"
_USER_NAMESPACE = uuid.UUID("6f1c1f0e-2a57-4d5e-9a51-0c3e5b7f2d11")


def error_body(status: int, message: str) -> dict[str, Any]:
    """credly.md §1.4: ``{"data": {"message": ...}, "metadata": null}``."""
    return {"data": {"message": message}, "metadata": None}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message), status_code=status, headers=headers)


def one(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse({"data": data, "metadata": {}}, status_code=status)


async def read_params(request: Request) -> dict[str, Any]:
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


def list_query(request: Request) -> tuple[dict[str, list[str]], list[tuple[str, bool]]]:
    """The ``filter`` and ``sort`` parameters of a list call (credly.md §1.6)."""
    return parse_filter(request.query_params.get("filter")), parse_sort(request.query_params.get("sort"))


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def faults_json(faults: FaultConfig) -> dict[str, Any]:
    return faults.to_dict()


def statuses_json(calls: RouteCounter) -> dict[str, dict[str, int]]:
    return {route: {str(k): v for k, v in per.items()} for route, per in calls.statuses().items()}


def owner_json(state: CredlyState) -> dict[str, Any]:
    slug = "sandbox-academy"
    return {
        "type": "Organization",
        "id": state.organization_id,
        "name": state.organization_name,
        "url": f"{WEB_BASE}/organizations/{slug}",
        "vanity_url": f"{WEB_BASE}/org/{slug}",
        "vanity_slug": slug,
        "verified": True,
        "viewable": True,
        "enable_blockchain": False,
    }


def organization_json(state: CredlyState, webhook_url: str | None) -> dict[str, Any]:
    return {
        "id": state.organization_id,
        "name": state.organization_name,
        "website_url": "https://academy.example.com",
        "webhook_url": webhook_url,
        "allowed_webhooks": [],
        "contact_email": "credly-admin@academy.example.com",
        "technical_contact_email": "it@academy.example.com",
        "vanity_slug": "sandbox-academy",
        "vanity_url": f"{WEB_BASE}/org/sandbox-academy",
        "verified": True,
        "workforce_enabled": False,
        "photo": {"id": state.organization_id, "url": f"{IMAGE_BASE}/org/{state.organization_id}.png"},
        "photo_url": f"{IMAGE_BASE}/org/{state.organization_id}.png",
        "created_at": iso(TEMPLATE_EPOCH - timedelta(days=30)),
        "updated_at": iso(TEMPLATE_EPOCH - timedelta(days=30)),
    }


def template_json(state: CredlyState, t: Template) -> dict[str, Any]:
    slug = slugify(t.name)
    image = f"{IMAGE_BASE}/size/340x340/images/{t.id}/image.png"
    return {
        "id": t.id,
        "name": t.name,
        "description": t.description,
        "state": t.state,
        "allow_duplicate_badges": t.allow_duplicate_badges,
        "public": t.public,
        "visibility": "public" if t.public else "private",
        "badges_count": state.badges_count(t.id),
        "recipient_type": "User",
        "cost": None,
        "level": None,
        "time_to_earn": None,
        "type_category": None,
        "vanity_slug": slug,
        "url": f"{WEB_BASE}/org/sandbox-academy/badge/{slug}",
        "global_activity_url": None,
        "criteria_url": None,
        "criteria_url_name": None,
        "image": {"id": t.id, "url": image},
        "image_url": image,
        "lock_badge_state": False,
        "record_to_blockchain": False,
        "printing_disabled": False,
        "send_expiring_badge_notifications": False,
        "show_badge_lmi": False,
        "show_lmi_jobs": False,
        "show_skill_tag_links": True,
        "show_template_settings": True,
        "get_issue_count": None,
        "certification": None,
        "earn_this_badge_url": None,
        "enable_earn_this_badge": False,
        "enable_detail_attribute_visibility": False,
        "default_expires_at": None,
        "default_expires_at_date": None,
        "default_expires_at_type": None,
        "created_at": iso(t.created_at),
        "updated_at": iso(t.updated_at),
        "state_updated_at": iso(t.state_updated_at),
        "owner": owner_json(state),
        "alignments": [],
        "recommendations": [],
        "required_badge_templates": [],
        "badge_template_activities": [],
        "skills": [],
        "reporting_tags": [],
        "recommending_templates": [],
        "criterion_for": [],
    }


def badge_json(state: CredlyState, b: Badge) -> dict[str, Any]:
    template = state.templates.get(b.template_id)
    owner = owner_json(state)
    entity = {k: owner[k] for k in ("type", "id", "name", "url", "vanity_url", "verified")}
    user: dict[str, Any] = {}
    if b.claimed:
        uid = str(uuid.uuid5(_USER_NAMESPACE, b.email_key))
        user = {
            "id": uid,
            "email": b.recipient_email,
            "first_name": b.first_name,
            "middle_name": b.middle_name,
            "last_name": b.last_name,
            "current_position_name": None,
            "current_organization_name": None,
            "confirmed": True,
            "photo": None,
            "photo_url": None,
            "url": f"{WEB_BASE}/users/{uid}",
        }
    image = f"{IMAGE_BASE}/size/340x340/images/{b.template_id}/image.png"
    out: dict[str, Any] = {
        "id": b.id,
        "state": b.state,
        "user": user,
        "created_by": entity,
        "issuer": {
            "summary": f"issued by {state.organization_name}",
            "entities": [{"label": "Issued by", "primary": True, "entity": entity}],
        },
        "printing_enabled": False,
        "print_method": None,
        "badge_template": template_json(state, template) if template else {"id": b.template_id},
        "issued_to": full_name(b),
        "issued_to_first_name": b.first_name,
        "issued_to_middle_name": b.middle_name,
        "issued_to_last_name": b.last_name,
        "issuer_earner_id": b.issuer_earner_id,
        "locale": b.locale,
        "public": True,
        "recipient_email": b.recipient_email,
        "replacement_badge_id": b.replacement_badge_id,
        "replaces_badge_id": b.replaces_badge_id,
        "revocation_reason": b.revocation_reason,
        "suppress_badge_notification_email": b.suppress_email,
        "country": b.country_name,
        "country_code": None,
        "state_or_province": b.state_or_province,
        "created_at": iso(b.created_at),
        "updated_at": iso(b.updated_at),
        "state_updated_at": iso(b.state_updated_at),
        "issued_at": iso(b.issued_at),
        "issued_at_date": iso_date(b.issued_at),
        "expires_at": iso(b.expires_at),
        "expires_at_date": iso_date(b.expires_at),
        "image": {"id": b.template_id, "url": image},
        "image_url": image,
        "alignments": [],
        "evidence": copy.deepcopy(b.evidence or []),
    }
    if b.state == "pending":
        out["accept_badge_url"] = f"{WEB_BASE}/badges/{b.id}/accept"
    else:
        out["badge_url"] = f"{WEB_BASE}/badges/{b.id}"
    return out


def event_json(state: CredlyState, e: Event) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": e.id,
        "event_type": e.event_type,
        "organization_id": state.organization_id,
        "occurred_at": iso(e.occurred_at),
    }
    if e.badge is not None:
        out["badge"] = badge_json(state, e.badge)
    if e.template is not None:
        out["badge_template"] = template_json(state, e.template)
    return out


__all__ = [
    "PER_PAGE",
    "badge_json",
    "error_body",
    "event_json",
    "organization_json",
    "paged",
    "read_params",
    "template_json",
]
