"""Every Docebo route the client calls, in one place (SPEC §5, api/docebo.md).

`DOCUMENTED` holds the routes public documentation ([V]) or code that calls real tenants ([C])
confirms. `TO_VERIFY` is THE table of routes — and of query parameters on documented routes
(`Route.param`) — no public source confirms ([I] in docebo.md): they
follow the contract agreed with the sandbox (common.md) and must be checked against the API
browser of your tenant (`https://<your platform>/api-browser/`) before production use. If your
tenant differs, change the path here — nothing else in the code names a path. docs/docebo-routes.md lists
this table under "Docebo routes to verify against your tenant".
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    evidence: str  # "V" documented, "C" seen in code calling real tenants, "I" inferred
    note: str
    # For an entry about a query parameter of the route (e.g. the changed-since filter): its name.
    param: str = ""

    @property
    def call(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def shown(self) -> str:
        """The route as the docs table shows it (with its parameter, if the entry is one)."""
        return f"{self.path}?{self.param}=" if self.param else self.path


DOCUMENTED: dict[str, Route] = {
    "token": Route("POST", "/oauth2/token", "V",
                   "OAuth2 token; client_credentials or password grant, scope api"),
    "users": Route("GET", "/manage/v1/user", "V",
                   "users; search_text (+ match_type=full) for the e-mail lookup"),
    "user": Route("GET", "/manage/v1/user/{id}", "V", "one user: data.user_data + additional_fields"),
    "courses": Route("GET", "/learn/v1/courses", "V", "courses with flat field_<id> values"),
    "course": Route("GET", "/learn/v1/courses/{id}", "V", "one course (+ learningplans[])"),
    "course_fields": Route("GET", "/learn/v1/courses/field", "C",
                           "course additional-field definitions (Docebo's own reporting code)"),
    "course_enrollments": Route("GET", "/course/v1/courses/enrollments", "C",
                                "enrollments; course_id[], user_id[], enrollment_status[]"),
    "enrollment": Route("PUT", "/learn/v1/enrollments/{course_id}/{user_id}", "V",
                        "update one enrollment: status, date_complete"),
    "learning_plans": Route("GET", "/learningplan/v1/learningplans", "C", "learning plans"),
    "lp_enrollments": Route("GET", "/learningplan/v1/learningplans/enrollments", "C",
                            "learning_plan_id[], user_id[]; extra_fields[] for status and dates"),
    "external_trainings": Route("GET", "/learn/v1/external_training", "C",
                                "external trainings (list; the user_id[] filter is [I])"),
    "certifications": Route("GET", "/learn/v1/certification", "C", "certification definitions"),
}

# THE table of unconfirmed routes ([I]). Verify each against your tenant's API browser.
TO_VERIFY: dict[str, Route] = {
    # Course additional fields: no public source documents the course-field writes; modelled on
    # the documented user-field API (/manage/v1/user_fields) under the course-field path.
    "course_field": Route(
        "GET", "/learn/v1/courses/field/{id}", "I",
        "one course additional field with its dropdown options [{id, label}]"),
    "course_field_create": Route(
        "POST", "/learn/v1/courses/field", "I",
        'create a dropdown: {"type": "dropdown", "translations": {"english": NAME}, '
        '"dropdown_options": [{"translations": {"english": LABEL}}]}'),
    "course_field_update": Route(
        "PUT", "/learn/v1/courses/field/{id}", "I",
        'edit options: {"dropdown_options": {"new": [...], "updated": [{"id_option", '
        '"translations"}], "deleted": [{"id_option"}]}}'),
    # External training writes: only the list is seen in real code; field names are assumed.
    "external_training_create": Route(
        "POST", "/learn/v1/external_training", "I",
        "create: {user_id, course_name, course_type, date_from, date_to, score, credits, "
        'training_institute} -> {"data": {"id"}}'),
    "external_training_update": Route(
        "PUT", "/learn/v1/external_training/{id}", "I", "update an external training"),
    "external_training_delete": Route(
        "DELETE", "/learn/v1/external_training/{id}", "I", "delete an external training"),
    # Certification awards: the certification microservice exists, its routes are unpublished.
    "certification_awards": Route(
        "GET", "/certification/v1/awards", "I",
        "awards; user_id[], id_cert[]; items {id_award, id_cert, user_id, issued_on, expire_on, "
        "status, source, external_link}"),
    "certification_award_create": Route(
        "POST", "/certification/v1/awards", "I",
        'award: {id_cert, user_id, issued_on, expire_on, source, external_link} -> '
        '{"data": {"id_award"}}'),
    "certification_award_update": Route(
        "PUT", "/certification/v1/awards/{id}", "I", "update an award (dates, link)"),
    "certification_award_delete": Route(
        "DELETE", "/certification/v1/awards/{id}", "I", "revoke (delete) an award"),
    # Courses of a learning plan: seen only in an AI-written client.
    "lp_courses": Route(
        "GET", "/learningplan/v1/learningplans/{id}/courses", "I",
        "courses of a learning plan: items {id_course, name, code}"),
    # The changed-since filter of incremental batches (F6/F7). Public code passes
    # updated_from='YYYY-MM-DD HH:MM:SS' to the course and learning-plan lists (docebo.md §1.3,
    # [C TAP]); these routes taking it is inferred. A tenant that ignores it is detected (items
    # older than the bound come back) and the batches then read in full.
    "courses_changed": Route(
        "GET", "/learn/v1/courses", "I",
        "updated_from=YYYY-MM-DD HH:MM:SS (UTC): only courses whose date_last_updated is on or "
        "after it; changing a course's dropdown value moves date_last_updated", param="updated_from"),
    "course_enrollments_changed": Route(
        "GET", "/course/v1/courses/enrollments", "I",
        "updated_from=YYYY-MM-DD HH:MM:SS (UTC): only enrollments whose "
        "enrollment_date_last_updated is on or after it", param="updated_from"),
    "lp_enrollments_changed": Route(
        "GET", "/learningplan/v1/learningplans/enrollments", "I",
        "updated_from=YYYY-MM-DD HH:MM:SS (UTC): only learning-plan enrollments whose "
        "enrollment_date_last_updated is on or after it", param="updated_from"),
    "certification_awards_changed": Route(
        "GET", "/certification/v1/awards", "I",
        "updated_from=YYYY-MM-DD HH:MM:SS (UTC): only awards whose date_last_updated (an item "
        "field) is on or after it", param="updated_from"),
}

ROUTES: dict[str, Route] = {**DOCUMENTED, **TO_VERIFY}

# Response details the client relies on that no public source confirms (also [I]).
FIELDS_TO_VERIFY: tuple[tuple[str, str], ...] = (
    ("course items and course detail", "flat keys field_<field id> = dropdown option id (int) "
                                       "or null; detail also additional_fields [{id, value}]"),
    ("course enrollment items", "enrollment_date_end_validity = expiry date or null"),
    ("external training list", "filter user_id[]; items carry id and status"),
    ("dates", "YYYY-MM-DD HH:MM:SS in UTC, on the same clock as the responses' Date header "
              "(the watermark of incremental batches comes from it)"),
    ("errors", "JSON body with a message member; 429 may carry Retry-After"),
)


def route(name: str) -> Route:
    return ROUTES[name]


def unverified_table_markdown() -> str:
    """The docs table of `TO_VERIFY` (kept in sync by a test)."""
    lines = ["| Method | Route | What the client assumes |", "|---|---|---|"]
    for r in TO_VERIFY.values():
        lines.append(f"| {r.method} | `{r.shown}` | {r.note.replace('|', '/')} |")
    return "\n".join(lines)
