"""The Docebo wire format (api/docebo.md §1.3–§1.4, [I] where the notes are silent): the list
envelope and its paging (``page``, ``page_size`` clamped to 200, ``no_pagination``,
``get_total_count``, cursor), PHP-style array parameters, JSON bodies, the Yii-style error body,
and the JSON of users, courses, fields, enrollments, plans, certifications and awards.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from services.sandbox.docebo.records import DoceboError

if TYPE_CHECKING:
    from services.sandbox.docebo.state import DoceboState

API_VERSION = "1.0.0"
DEFAULT_PAGE_SIZE = 200
COURSES_PAGE_SIZE = 20
MAX_PAGE_SIZE = 200

_HEADERS = {"X-Docebo-Api-Version": API_VERSION}


def error_body(status: int, message: str) -> dict[str, Any]:
    """Docebo's error body ([I], api/docebo.md §1.4)."""
    return {"name": DoceboError.NAMES.get(status, "Error"), "message": message, "code": 0, "status": status}


def error_response(status: int, message: str) -> JSONResponse:
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


def flag(request: Request, name: str) -> bool:
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
    if flag(request, "no_pagination"):
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
    if flag(request, "get_total_count"):
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


def uid_out(state: DoceboState, uid: int) -> Any:
    return str(uid) if state.user_id_as_string else uid


def user_item(state: DoceboState, uid: int) -> dict:
    u = state.users[uid]
    return {
        "user_id": uid_out(state, uid),
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


def field_values(state: DoceboState, cid: int) -> dict[str, Any]:
    values = state.course_values.get(cid, {})
    return {f"field_{fid}": values.get(fid) for fid in state.course_fields}


def course_item(state: DoceboState, cid: int) -> dict:
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
        **field_values(state, cid),
    }


def course_detail(state: DoceboState, cid: int) -> dict:
    c = state.courses[cid]
    item = course_item(state, cid)
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
                **({"options": options_json(f)} if f["type"] == "dropdown" else {}),
            }
            for f in state.course_fields.values()
        ],
    }


def options_json(f: dict) -> list[dict]:
    return [{"id": oid, "label": label} for oid, label in f["options"].items()]


def field_item(f: dict) -> dict:
    return {
        "id": f["id"],
        "type": f["type"],
        "name": {"value": f["name"], "values": [f["name"]]},
        "options": options_json(f),
    }


def enrollment_item(state: DoceboState, rec: dict, extra: set[str]) -> dict:
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


def lp_item(state: DoceboState, lp_id: int) -> dict:
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


def lp_enrollment_item(state: DoceboState, rec: dict, extra: set[str]) -> dict:
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


def award_item(state: DoceboState, rec: dict) -> dict:
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


def course_service_item(state: DoceboState, cid: int) -> dict:
    item = course_item(state, cid)
    return {"id": cid, "type": item["course_type"], **item}


__all__ = [
    "API_VERSION",
    "array_param",
    "error_body",
    "json_body",
    "paged",
    "single",
]
