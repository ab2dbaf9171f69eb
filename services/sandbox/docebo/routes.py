"""The Docebo API routes of the sandbox (api/docebo.md §1.2 OAuth2 token, §2 users, §3 courses
and fields, §4 enrollments and learning plans, §5 external training, §6 certifications): plain
handlers that read the tenant from ``request.app.state.sandbox``. Every route but the token one
needs ``Authorization: Bearer <token>``; missing, unknown or expired → 401 (docs/sandboxes.md).
"""

from __future__ import annotations

import base64
import functools
import hmac
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.sandbox.common import SandboxHandles
from services.sandbox.docebo.records import DoceboError, as_int, normalise_status
from services.sandbox.docebo.state import DoceboState
from services.sandbox.docebo.wire import (
    COURSES_PAGE_SIZE,
    DEFAULT_PAGE_SIZE,
    array_param,
    award_item,
    cert_item,
    course_detail,
    course_item,
    course_service_item,
    enrollment_item,
    field_item,
    json_body,
    lp_enrollment_item,
    lp_item,
    paged,
    single,
    training_item,
    uid_out,
    user_item,
)

Handler = Callable[[Request], Awaitable[Response]]


def handles(request: Request) -> SandboxHandles:
    """The serving app's state, faults, counters and webhook sender."""
    return request.app.state.sandbox


def tenant(request: Request) -> DoceboState:
    return handles(request).state


def api(handler: Handler) -> Handler:
    """Bearer token check around an API handler (a ``DoceboError`` answers through the app)."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise DoceboError(401, "Your request was made without an access token (Authorization: Bearer <token>)")
        tenant(request).check_token(value.strip())
        return await handler(request)

    return endpoint


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


# -- OAuth2 ------------------------------------------------------------------------------------


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Basic realm="oauth"'} if status == 401 else {}
    return JSONResponse({"error": error, "error_description": description}, status_code=status, headers=headers)


async def token(request: Request) -> Response:
    state = tenant(request)
    ctype = request.headers.get("content-type", "")
    try:
        if "application/json" in ctype:
            body = await json_body(request)
            fields = {k: "" if v is None else str(v) for k, v in body.items()}
        else:
            form = await request.form()
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
    except DoceboError:
        return _oauth_error(400, "invalid_request", "The request body is not valid JSON")
    except Exception:  # malformed multipart / form
        return _oauth_error(400, "invalid_request", "The request body could not be parsed")
    basic = request.headers.get("authorization", "")
    if basic.lower().startswith("basic "):
        try:
            cid, _, secret = base64.b64decode(basic[6:].strip()).decode().partition(":")
            fields.setdefault("client_id", cid)
            fields.setdefault("client_secret", secret)
        except ValueError:
            return _oauth_error(401, "invalid_client", "Malformed HTTP Basic client credentials")
    grant = fields.get("grant_type", "")
    if not grant:
        return _oauth_error(400, "invalid_request", "The grant type was not specified in the request")
    if grant not in ("client_credentials", "password", "refresh_token"):
        return _oauth_error(400, "unsupported_grant_type", f'Grant type "{grant}" not supported')
    client_id = fields.get("client_id", "")
    if not client_id:
        return _oauth_error(400, "invalid_request", "Client credentials were not found in the request")
    client = state.clients.get(client_id)
    if client is None or not _same(client.client_secret, fields.get("client_secret", "")):
        return _oauth_error(401, "invalid_client", "The client credentials are invalid")
    if grant not in client.grants:
        return _oauth_error(400, "unauthorized_client", "The grant type is unauthorized for this client_id")
    username: str | None = None
    if grant == "password":
        username, password = fields.get("username", ""), fields.get("password", "")
        if not username or not password:
            return _oauth_error(400, "invalid_request", "Missing parameters: \"username\" and \"password\" required")
        if not _same(state.passwords.get(username, "\0" * 16), password) or username not in state.passwords:
            return _oauth_error(400, "invalid_grant", "Invalid username and password combination")
    elif grant == "refresh_token":
        held = state.refresh_tokens.get(fields.get("refresh_token", ""))
        if held is None or held[0] != client_id:
            return _oauth_error(400, "invalid_grant", "Invalid refresh token")
        username = held[1]
    body = state.issue_token(client_id, username, refresh=grant != "client_credentials")
    return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


# -- users -------------------------------------------------------------------------------------


@api
async def list_users(request: Request) -> Response:
    state = tenant(request)
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
    return paged(request, ids, partial(user_item, state))


@api
async def get_user(request: Request) -> Response:
    state = tenant(request)
    u = state.get_user(request.path_params["user_id"])
    item = user_item(state, u["user_id"])
    user_data = {
        k: item[k]
        for k in ("user_id", "username", "email", "first_name", "last_name", "fullname", "uuid", "language", "level")
    }
    user_data.update(valid="1", timezone="UTC", creation_date=u["created"], last_access_date=None, expiration_date=None)
    return single({"user_data": user_data, "additional_fields": []})


async def update_user(request: Request) -> Response:
    state = tenant(request)
    u = state.update_user(request.path_params["user_id"], await json_body(request))
    return single({"user_id": uid_out(state, u["user_id"]), "success": True})


# -- courses and fields ------------------------------------------------------------------------


@api
async def list_courses(request: Request) -> Response:
    state = tenant(request)
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
    serialise = partial(course_item if request.url.path.startswith("/learn/") else course_service_item, state)
    return paged(request, order, serialise, default_size=default)


@api
async def get_course(request: Request) -> Response:
    state = tenant(request)
    course = state.get_course(request.path_params["course_id"])
    return single(course_detail(state, course["id_course"]))


@api
async def list_fields(request: Request) -> Response:
    state = tenant(request)
    return paged(request, list(state.course_fields.values()), field_item)


@api
async def get_field(request: Request) -> Response:
    state = tenant(request)
    return single(field_item(state.get_field(request.path_params["field_id"])))


def _option_label(entry: Any, where: str) -> str:
    if not isinstance(entry, dict):
        raise DoceboError(400, f"Each entry of {where} must be an object")
    translations = entry.get("translations")
    if not isinstance(translations, dict) or not translations:
        raise DoceboError(400, f"Each entry of {where} needs translations {{\"english\": label}}")
    label = translations.get("english") or next(iter(translations.values()))
    if not isinstance(label, str) or not label.strip():
        raise DoceboError(400, f"Each entry of {where} needs a non-empty label")
    return label


@api
async def create_field(request: Request) -> Response:
    state = tenant(request)
    body = await json_body(request)
    translations = body.get("translations")
    if not isinstance(translations, dict) or not isinstance(translations.get("english"), str):
        raise DoceboError(400, "Field 'translations' with an 'english' name is required")
    options = body.get("dropdown_options") or []
    if not isinstance(options, list):
        raise DoceboError(400, "Field 'dropdown_options' must be a list")
    labels = [_option_label(o, "dropdown_options") for o in options]
    fld = state.create_field(str(body.get("type") or ""), translations["english"], labels)
    return single(field_item(fld), status=201)


@api
async def update_field(request: Request) -> Response:
    state = tenant(request)
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
    new = [_option_label(o, "dropdown_options.new") for o in opts.get("new") or []]
    renamed: dict[int, str] = {}
    for entry in opts.get("updated") or []:
        if not isinstance(entry, dict) or "id_option" not in entry:
            raise DoceboError(400, "Each entry of dropdown_options.updated needs id_option")
        renamed[as_int(entry["id_option"], "id_option")] = _option_label(entry, "dropdown_options.updated")
    deleted = []
    for entry in opts.get("deleted") or []:
        if not isinstance(entry, dict) or "id_option" not in entry:
            raise DoceboError(400, "Each entry of dropdown_options.deleted needs id_option")
        deleted.append(as_int(entry["id_option"], "id_option"))
    fld = state.update_field(request.path_params["field_id"], name=name, new=new, renamed=renamed, deleted=deleted)
    return single(field_item(fld))


@api
async def delete_field(request: Request) -> Response:
    state = tenant(request)
    state.delete_field(request.path_params["field_id"])
    return single([])


# -- enrollments -------------------------------------------------------------------------------


@api
async def list_enrollments(request: Request) -> Response:
    state = tenant(request)
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
    return paged(request, source, lambda r: enrollment_item(state, r, extra))


@api
async def get_enrollment(request: Request) -> Response:
    state = tenant(request)
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


@api
async def update_enrollment(request: Request) -> Response:
    state = tenant(request)
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


@api
async def create_enrollments(request: Request) -> Response:
    state = tenant(request)
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


# -- learning plans ----------------------------------------------------------------------------


@api
async def list_lps(request: Request) -> Response:
    state = tenant(request)
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
    return paged(request, order, partial(lp_item, state))


@api
async def get_lp(request: Request) -> Response:
    state = tenant(request)
    lp = state.get_learning_plan(request.path_params["lp_id"])
    return single(lp_item(state, lp["learning_plan_id"]))


@api
async def lp_courses(request: Request) -> Response:
    state = tenant(request)
    lp = state.get_learning_plan(request.path_params["lp_id"])

    def item(pair: tuple[int, int]) -> dict:
        seq, cid = pair
        c = state.courses[cid]
        return {"id_course": cid, "name": c["name"], "code": c["code"], "course_type": c["course_type"], "sequence": seq}

    return paged(request, list(enumerate(lp["course_ids"], 1)), item)


@api
async def lp_enrollments(request: Request) -> Response:
    state = tenant(request)
    statuses = array_param(request, "enrollment_status", ints=False)
    if statuses is not None:
        statuses = [normalise_status(s) for s in statuses]
    extra = set(array_param(request, "extra_fields", ints=False) or ())
    source = state.iter_lp_enrollments(
        array_param(request, "learning_plan_id"), array_param(request, "user_id"), statuses,
        updated_from=state.changed_since(request.query_params.get("updated_from")),
    )
    return paged(request, source, lambda r: lp_enrollment_item(state, r, extra))


# -- external training -------------------------------------------------------------------------


@api
async def list_trainings(request: Request) -> Response:
    state = tenant(request)
    return paged(request, state.iter_trainings(array_param(request, "user_id")), training_item)


@api
async def create_training(request: Request) -> Response:
    state = tenant(request)
    rec = state.create_training(await json_body(request))
    return single({"id": rec["id"]}, status=201)


@api
async def update_training(request: Request) -> Response:
    state = tenant(request)
    rec = state.update_training(request.path_params["training_id"], await json_body(request))
    return single({"id": rec["id"]})


@api
async def delete_training(request: Request) -> Response:
    state = tenant(request)
    state.delete_training(request.path_params["training_id"])
    return single([])


# -- certifications ----------------------------------------------------------------------------


@api
async def list_certs(request: Request) -> Response:
    state = tenant(request)
    return paged(request, [state.certifications[c] for c in sorted(state.certifications)], cert_item)


@api
async def list_awards(request: Request) -> Response:
    state = tenant(request)
    source = state.iter_awards(
        array_param(request, "user_id"), array_param(request, "id_cert"),
        updated_from=state.changed_since(request.query_params.get("updated_from")),
    )
    return paged(request, source, partial(award_item, state))


@api
async def get_award(request: Request) -> Response:
    state = tenant(request)
    return single(award_item(state, state.get_award(request.path_params["award_id"])))


@api
async def create_award(request: Request) -> Response:
    state = tenant(request)
    rec = state.create_award(await json_body(request))
    return single({"id_award": rec["id_award"]}, status=201)


@api
async def update_award(request: Request) -> Response:
    state = tenant(request)
    rec = state.update_award(request.path_params["award_id"], await json_body(request))
    return single({"id_award": rec["id_award"]})


@api
async def delete_award(request: Request) -> Response:
    state = tenant(request)
    state.revoke_award(request.path_params["award_id"])
    return single([])


API_ROUTES = [
    Route("/oauth2/token", token, methods=["POST"]),
    Route("/manage/v1/user", list_users, methods=["GET"]),
    Route("/manage/v1/user/{user_id}", get_user, methods=["GET"]),
    Route("/manage/v1/user/{user_id}", update_user, methods=["PUT"]),
    Route("/learn/v1/courses", list_courses, methods=["GET"]),
    Route("/learn/v1/courses/field", list_fields, methods=["GET"]),
    Route("/learn/v1/courses/field", create_field, methods=["POST"]),
    Route("/learn/v1/courses/field/{field_id}", get_field, methods=["GET"]),
    Route("/learn/v1/courses/field/{field_id}", update_field, methods=["PUT"]),
    Route("/learn/v1/courses/field/{field_id}", delete_field, methods=["DELETE"]),
    Route("/learn/v1/courses/{course_id}", get_course, methods=["GET"]),
    Route("/course/v1/courses", list_courses, methods=["GET"]),
    Route("/course/v1/courses/enrollments", list_enrollments, methods=["GET"]),
    Route("/course/v1/courses/{course_id}", get_course, methods=["GET"]),
    Route("/course/v1/courses/{course_id}/enrollments", list_enrollments, methods=["GET"]),
    Route("/learn/v1/enrollments", create_enrollments, methods=["POST"]),
    Route("/learn/v1/enrollments/{course_id}/{user_id}", get_enrollment, methods=["GET"]),
    Route("/learn/v1/enrollments/{course_id}/{user_id}", update_enrollment, methods=["PUT"]),
    Route("/learningplan/v1/learningplans", list_lps, methods=["GET"]),
    Route("/learningplan/v1/learningplans/enrollments", lp_enrollments, methods=["GET"]),
    Route("/learningplan/v1/learningplans/{lp_id}", get_lp, methods=["GET"]),
    Route("/learningplan/v1/learningplans/{lp_id}/courses", lp_courses, methods=["GET"]),
    Route("/learn/v1/external_training", list_trainings, methods=["GET"]),
    Route("/learn/v1/external_training", create_training, methods=["POST"]),
    Route("/learn/v1/external_training/{training_id}", update_training, methods=["PUT"]),
    Route("/learn/v1/external_training/{training_id}", delete_training, methods=["DELETE"]),
    Route("/learn/v1/certification", list_certs, methods=["GET"]),
    Route("/certification/v1/awards", list_awards, methods=["GET"]),
    Route("/certification/v1/awards", create_award, methods=["POST"]),
    Route("/certification/v1/awards/{award_id}", get_award, methods=["GET"]),
    Route("/certification/v1/awards/{award_id}", update_award, methods=["PUT"]),
    Route("/certification/v1/awards/{award_id}", delete_award, methods=["DELETE"]),
]

__all__ = ["API_ROUTES", "Handler", "handles", "tenant"]
