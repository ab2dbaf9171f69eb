"""In-memory world of the Docebo sandbox (issue 3; api/docebo.md is the source of truth).

`DoceboState` holds users, courses, course additional fields, enrollments, learning plans,
external trainings, certifications and awards, plus the OAuth2 clients and the tokens they hold.
It knows nothing about HTTP: `services/sandbox/docebo/routes.py` serves it. Domain errors are raised
as `DoceboError(status, message)`; the app turns them into Docebo's error body.

Scale (the large demo set: 20,000 users, ~100,000 enrollments): every record lives once, in a
dict keyed by its id; enrollments are indexed by course and by user, learning-plan membership by
course, awards by user and by certification. A list call walks an index and serialises only the
page it returns; nothing copies the world per request.

Events: a change that Docebo would announce by webhook calls `self.emit(event, payload, batch)`;
the app plugs its webhook dispatcher in there (a no-op by default).

Dates are Docebo's `"YYYY-MM-DD HH:MM:SS"` in UTC (api/docebo.md §1.3).
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.sandbox.demo_data import DemoData

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
ENROLLMENT_STATUSES = ("not_started", "in_progress", "completed")
# Legacy numeric codes and webhook vocabulary accepted on writes (api/docebo.md §4.1).
_STATUS_ALIASES = {
    "0": "not_started",
    "subscribed": "not_started",
    "enrolled": "not_started",
    "1": "in_progress",
    "2": "completed",
}
CERTIFICATION_EVENTS = ("certification.awarded", "certification.updated", "certification.revoked")
COMPLETION_EVENT = "course.enrollment.completed"


class DoceboError(Exception):
    """A domain error with the HTTP status Docebo would answer."""

    NAMES = {
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        405: "Method Not Allowed",
        409: "Conflict",
        422: "Unprocessable Entity",
        429: "Too Many Requests",
        500: "Internal Server Error",
        503: "Service Unavailable",
    }

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def name(self) -> str:
        return self.NAMES.get(self.status, "Error")


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def fmt(dt: datetime | None) -> str | None:
    return dt.strftime(DATE_FORMAT) if dt is not None else None


def parse_date(value: Any, field_name: str, *, required: bool = False) -> str | None:
    """Validate a Docebo date (`YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DD`) and return it in the long
    form; None/'' → None unless required. Raises DoceboError(400) naming the field."""
    if value is None or value == "":
        if required:
            raise DoceboError(400, f"Field '{field_name}' is required")
        return None
    if isinstance(value, str):
        text = value.strip().replace("T", " ").removesuffix("Z")
        for pattern in (DATE_FORMAT, "%Y-%m-%d"):
            try:
                return datetime.strptime(text, pattern).strftime(DATE_FORMAT)
            except ValueError:
                pass
    raise DoceboError(400, f"Field '{field_name}' must be a date 'YYYY-MM-DD HH:MM:SS', got {value!r}")


def _as_dt(text: str) -> datetime:
    return datetime.strptime(text, DATE_FORMAT).replace(tzinfo=UTC)


def as_int(value: Any, field_name: str) -> int:
    if isinstance(value, bool):
        raise DoceboError(400, f"Field '{field_name}' must be an integer, got {value!r}")
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise DoceboError(400, f"Field '{field_name}' must be an integer, got {value!r}") from None


def normalise_status(value: Any) -> str:
    text = str(value).strip().lower()
    text = _STATUS_ALIASES.get(text, text)
    if text not in ENROLLMENT_STATUSES:
        raise DoceboError(
            400, f"Invalid enrollment status {value!r}; expected one of {', '.join(ENROLLMENT_STATUSES)}"
        )
    return text


@dataclass
class Token:
    value: str
    client_id: str
    username: str | None
    expires_at: float
    scope: str = "api"


@dataclass
class OAuthClient:
    client_id: str
    client_secret: str
    grants: tuple[str, ...] = ("client_credentials", "password", "refresh_token")


class DoceboState:
    """The sandbox tenant. Construct empty, or with `from_demo(data)`."""

    def __init__(
        self,
        *,
        client_id: str = "credly-console",
        client_secret: str | None = None,
        admin_username: str = "sandbox.admin",
        admin_password: str | None = None,
        token_lifetime_s: int = 3600,
        user_id_as_string: bool = True,
        retry_after_header: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clients: dict[str, OAuthClient] = {}
        self.passwords: dict[str, str] = {}
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_hex(16)
        self.admin_username = admin_username
        self.admin_password = admin_password or secrets.token_urlsafe(12)
        self.add_client(self.client_id, self.client_secret)
        self.passwords[self.admin_username] = self.admin_password
        self.token_lifetime_s = token_lifetime_s
        # api/docebo.md §2: newer tenants send user_id as a string in /manage/v1/user.
        self.user_id_as_string = user_id_as_string
        # api/docebo.md §1.5: no Retry-After is documented on Docebo's 429; switchable here.
        self.retry_after_header = retry_after_header
        self.clock = clock
        # Data timestamps (`date_last_updated` & co., the Date header) come from `now()`: real
        # UTC time plus `time_offset`, which `advance()` moves forward ("time travel" for tests
        # and benchmarks of incremental runs; tokens keep using `clock`).
        self.time_offset = timedelta(0)
        # Changed-since filters (`updated_from`, [I]): a tenant that ignores them is simulated by
        # switching this off (the filter is then accepted and not applied).
        self.honour_updated_from = True
        self.tokens: dict[str, Token] = {}
        self.refresh_tokens: dict[str, tuple[str, str | None]] = {}
        self.emit: Callable[[str, dict, bool], None] = lambda event, payload, batch: None
        self._demo: DemoData | None = None
        self._clear()

    # -- time -----------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The tenant's clock (UTC, whole seconds): real time plus `time_offset`."""
        return (datetime.now(UTC) + self.time_offset).replace(microsecond=0)

    def advance(self, seconds: float) -> datetime:
        """Move the tenant's clock forward (time travel); returns the new now."""
        if seconds < 0:
            raise DoceboError(400, "The clock only moves forward")
        self.time_offset += timedelta(seconds=seconds)
        return self.now()

    def changed_since(self, value: Any) -> str | None:
        """The `updated_from` bound in the long form, or None when absent or not honoured."""
        bound = parse_date(value, "updated_from")
        return bound if self.honour_updated_from else None

    # -- loading --------------------------------------------------------------------------------

    def _clear(self) -> None:
        self.users: dict[int, dict] = {}
        self._user_exact: dict[str, list[int]] = {}
        self._user_blob: dict[int, str] = {}
        self._user_orders: dict[str, list[int]] = {}
        self.courses: dict[int, dict] = {}
        self._course_orders: dict[str, list[int]] = {}
        self.course_fields: dict[int, dict] = {}  # id -> {id, type, name, options: {opt_id: label}}
        self.course_values: dict[int, dict[int, Any]] = {}  # course -> {field id: value}
        self.enrollments: dict[tuple[int, int], dict] = {}
        self.enr_by_course: dict[int, dict[int, dict]] = {}
        self.enr_by_user: dict[int, dict[int, dict]] = {}
        self.learning_plans: dict[int, dict] = {}
        self.lps_by_course: dict[int, list[int]] = {}
        self.lp_enrollments: dict[tuple[int, int], dict] = {}
        self.lpe_by_lp: dict[int, dict[int, dict]] = {}
        self.lpe_by_user: dict[int, dict[int, dict]] = {}
        self.external_trainings: dict[int, dict] = {}
        self.et_by_user: dict[int, dict[int, dict]] = {}
        self.certifications: dict[int, dict] = {}
        self.awards: dict[int, dict] = {}
        self.awards_by_user: dict[int, dict[int, dict]] = {}
        self.awards_by_cert: dict[int, dict[int, dict]] = {}
        self._next = {"field": 1, "option": 1, "training": 1, "award": 1, "lp": 1, "course": 1}

    @classmethod
    def from_demo(cls, data: DemoData, **options: Any) -> DoceboState:
        """A tenant holding the Docebo half of `data` (users, courses, fields, enrollments,
        learning plans, certifications, awards). `options` go to the constructor."""
        state = cls(**options)
        state.load(data)
        return state

    def load(self, data: DemoData | None) -> None:
        """Replace the world with `data` (None: empty). Tokens are kept."""
        self._demo = data
        self._clear()
        if data is None:
            return
        stamp = "2023-01-01 00:00:00"
        for u in data.users:
            self.add_user(dict(u), created=stamp)
        for c in data.courses:
            self.add_course(dict(c))
        for f in data.course_fields:
            self.course_fields[f["id"]] = {
                "id": f["id"],
                "type": f["type"],
                "name": f["name"],
                "options": {o["id"]: o["label"] for o in f.get("options", [])},
            }
            self._next["field"] = max(self._next["field"], f["id"] + 1)
            for o in f.get("options", []):
                self._next["option"] = max(self._next["option"], o["id"] + 1)
        for v in data.course_field_values:
            self.course_values.setdefault(v["course_id"], {})[v["field_id"]] = v["value"]
        for e in data.enrollments:
            rec = {
                "course_id": e["course_id"],
                "user_id": e["user_id"],
                "status": e["status"],
                "enrolled_at": e["enrolled_at"],
                "completed_at": e.get("completed_at"),
                "validity_end": e.get("validity_end"),
                "updated_at": e.get("completed_at") or e["enrolled_at"],
                "score": 0,
            }
            self._index_enrollment(rec)
        for lp in data.learning_plans:
            self.add_learning_plan(dict(lp))
        for le in data.lp_enrollments:
            self._index_lp_enrollment(
                {"learning_plan_id": le["learning_plan_id"], "user_id": le["user_id"], "enrolled_at": le["enrolled_at"]}
            )
        for rec in self.lp_enrollments.values():
            self._refresh_lp_enrollment(rec)
            rec["updated_at"] = rec["completed_at"] or rec["enrolled_at"]
        for c in data.certifications:
            self.certifications[c["id_cert"]] = dict(c)
        for a in data.awards:
            rec = dict(a)
            rec.setdefault("source", "")
            rec.setdefault("external_link", "")
            rec.setdefault("updated_at", rec["issued_on"])
            self._index_award(rec)
            self._next["award"] = max(self._next["award"], rec["id_award"] + 1)

    def reset(self) -> None:
        """Back to the data the state was loaded with; tokens are dropped."""
        self.load(self._demo)
        self.tokens.clear()
        self.refresh_tokens.clear()

    def summary(self) -> dict[str, int]:
        return {
            "users": len(self.users),
            "courses": len(self.courses),
            "course_fields": len(self.course_fields),
            "enrollments": len(self.enrollments),
            "completed_enrollments": sum(1 for e in self.enrollments.values() if e["status"] == "completed"),
            "learning_plans": len(self.learning_plans),
            "lp_enrollments": len(self.lp_enrollments),
            "external_trainings": len(self.external_trainings),
            "certifications": len(self.certifications),
            "awards": len(self.awards),
            "tokens": len(self.tokens),
        }

    # -- OAuth2 (api/docebo.md §1.2) ---------------------------------------------------------------

    def add_client(self, client_id: str, client_secret: str, grants: Iterable[str] | None = None) -> None:
        self.clients[client_id] = OAuthClient(client_id, client_secret, tuple(grants or OAuthClient.grants))

    def issue_token(self, client_id: str, username: str | None, *, refresh: bool) -> dict[str, Any]:
        value = secrets.token_hex(20)
        self.tokens[value] = Token(value, client_id, username, self.clock() + self.token_lifetime_s)
        body: dict[str, Any] = {
            "access_token": value,
            "expires_in": self.token_lifetime_s,
            "token_type": "Bearer",
            "scope": "api",
        }
        if refresh:
            rt = secrets.token_hex(20)
            self.refresh_tokens[rt] = (client_id, username)
            body["refresh_token"] = rt
        return body

    def check_token(self, value: str) -> Token:
        token = self.tokens.get(value)
        if token is None:
            raise DoceboError(401, "The access token provided is invalid")
        if self.clock() >= token.expires_at:
            raise DoceboError(401, "The access token provided has expired")
        return token

    def expire_tokens(self) -> int:
        """Expire every token now (control endpoint); returns how many there were."""
        stamp = self.clock() - 1
        for token in self.tokens.values():
            token.expires_at = stamp
        return len(self.tokens)

    # -- users (§2) --------------------------------------------------------------------------------

    def add_user(self, user: dict, *, created: str | None = None) -> dict:
        uid = int(user["user_id"])
        user["user_id"] = uid
        user.setdefault("created", created or fmt(self.now()))
        self.users[uid] = user
        fullname = f"{user['first_name']} {user['last_name']}"
        for key in {user["email"].lower(), user["username"].lower(), fullname.lower()}:
            self._user_exact.setdefault(key, []).append(uid)
        words = (user["first_name"], user["last_name"], user["username"], user["email"], fullname)
        self._user_blob[uid] = " ".join(words).lower()
        self._user_orders.clear()
        return user

    USER_UPDATABLE = {"email": "email", "username": "username", "firstname": "first_name", "first_name": "first_name",
                      "lastname": "last_name", "last_name": "last_name"}

    def update_user(self, user_id: Any, body: dict) -> dict:
        """`PUT /manage/v1/user/{id}` (docebo.md §users): e-mail, username, names; additional fields kept
        as given. A taken e-mail or username (another user's) is refused like Docebo does (400)."""
        user = self.get_user(user_id)
        if not isinstance(body, dict):
            raise DoceboError(400, "The request body must be a JSON object")
        changes = {attr: str(body[key]).strip() for key, attr in self.USER_UPDATABLE.items() if key in body}
        for attr in ("email", "username"):
            value = changes.get(attr)
            if value is None:
                continue
            if not value:
                raise DoceboError(400, f"Field '{attr}' cannot be empty")
            taken = [u for u in self._user_exact.get(value.lower(), ()) if u != user["user_id"] and
                     str(self.users[u][attr]).lower() == value.lower()]
            if taken:
                raise DoceboError(400, f"The {attr} {value!r} is already used by another user")
        if isinstance(body.get("additional_fields"), dict):
            user.setdefault("additional_fields", {}).update(body["additional_fields"])
        uid = user["user_id"]
        for ids in self._user_exact.values():
            if uid in ids:
                ids[:] = [i for i in ids if i != uid]
        del self.users[uid]
        return self.add_user({**user, **changes}, created=user["created"])

    def get_user(self, user_id: Any) -> dict:
        try:
            uid = int(user_id)
        except (TypeError, ValueError):
            uid = None
        user = self.users.get(uid) if uid is not None else None
        if user is None:
            raise DoceboError(404, f"User {user_id} not found")
        return user

    USER_SORTS = ("user_id", "username", "first_name", "last_name", "email")

    def user_order(self, attr: str) -> list[int]:
        if attr not in self.USER_SORTS:
            raise DoceboError(400, f"Invalid sort_attr {attr!r}; expected one of {', '.join(self.USER_SORTS)}")
        order = self._user_orders.get(attr)
        if order is None:
            if attr == "user_id":
                order = sorted(self.users)
            else:
                order = sorted(self.users, key=lambda uid: (str(self.users[uid][attr]).lower(), uid))
            self._user_orders[attr] = order
        return order

    def search_users(self, text: str, *, full: bool, sort_attr: str, descending: bool) -> list[int] | Iterator[int]:
        """User ids matching `text` in order: `full` = exact (case-insensitive) e-mail, username or
        full name, served from an index; otherwise a substring of names, username or e-mail."""
        order = self.user_order(sort_attr)
        if not text:
            return order[::-1] if descending else order
        needle = text.strip().lower()
        if full:
            hits = sorted(set(self._user_exact.get(needle, ())))
            if len(hits) > 1 and sort_attr != "user_id":
                hits.sort(key=lambda uid: (str(self.users[uid][sort_attr]).lower(), uid))
            return hits[::-1] if descending else hits
        seq = reversed(order) if descending else order
        return [uid for uid in seq if needle in self._user_blob[uid]]

    # -- courses and additional fields (§3) ----------------------------------------------------------

    def add_course(self, course: dict) -> dict:
        cid = int(course["id_course"])
        course.setdefault("validity_days", None)
        course.setdefault("description", f"{course['name']} ({course.get('course_type', 'elearning')}).")
        course.setdefault("updated_at", "2023-01-01 00:00:00")
        self.courses[cid] = course
        self.enr_by_course.setdefault(cid, {})
        self._course_orders.clear()
        return course

    def get_course(self, course_id: Any) -> dict:
        try:
            course = self.courses.get(int(course_id))
        except (TypeError, ValueError):
            course = None
        if course is None:
            raise DoceboError(404, f"Course {course_id} not found")
        return course

    COURSE_SORTS = ("id_course", "name", "code", "date_last_updated")

    def course_order(self, attr: str) -> list[int]:
        if attr not in self.COURSE_SORTS:
            raise DoceboError(400, f"Invalid sort_by {attr!r}; expected one of {', '.join(self.COURSE_SORTS)}")
        order = self._course_orders.get(attr)
        if order is None:
            if attr == "id_course":
                order = sorted(self.courses)
            else:
                key = "updated_at" if attr == "date_last_updated" else attr
                order = sorted(self.courses, key=lambda c: (str(self.courses[c][key]).lower(), c))
            self._course_orders[attr] = order
        return order

    def get_field(self, field_id: Any) -> dict:
        try:
            fld = self.course_fields.get(int(field_id))
        except (TypeError, ValueError):
            fld = None
        if fld is None:
            raise DoceboError(404, f"Course additional field {field_id} not found")
        return fld

    def create_field(self, field_type: str, name: str, labels: list[str]) -> dict:
        if field_type not in ("dropdown", "textfield", "textarea", "date"):
            raise DoceboError(400, f"Invalid field type {field_type!r}")
        if not name or not name.strip():
            raise DoceboError(400, "Field name (translations.english) is required")
        if field_type != "dropdown" and labels:
            raise DoceboError(400, "Only dropdown fields have options")
        fid = self._take("field")
        fld = {"id": fid, "type": field_type, "name": name.strip(), "options": {}}
        for label in labels:
            self._add_option(fld, label)
        self.course_fields[fid] = fld
        return fld

    def _add_option(self, fld: dict, label: Any) -> int:
        if not isinstance(label, str) or not label.strip():
            raise DoceboError(400, "A dropdown option needs a non-empty label")
        oid = self._take("option")
        fld["options"][oid] = label.strip()
        return oid

    def update_field(
        self,
        field_id: Any,
        *,
        name: str | None = None,
        new: list[str] = (),
        renamed: dict[int, str] | None = None,
        deleted: Iterable[int] = (),
    ) -> dict:
        """Rename the field and add / rename / delete dropdown options ([I] contract). All checks
        run before any change, so a bad request changes nothing."""
        fld = self.get_field(field_id)
        renamed = renamed or {}
        deleted = list(deleted)
        if (new or renamed or deleted) and fld["type"] != "dropdown":
            raise DoceboError(400, "Only dropdown fields have options")
        for oid in [*renamed, *deleted]:
            if oid not in fld["options"]:
                raise DoceboError(400, f"Option {oid} does not belong to field {fld['id']}")
        for label in [*new, *renamed.values()]:
            if not isinstance(label, str) or not label.strip():
                raise DoceboError(400, "A dropdown option needs a non-empty label")
        if name is not None:
            if not name.strip():
                raise DoceboError(400, "Field name cannot be empty")
            fld["name"] = name.strip()
        for oid, label in renamed.items():
            fld["options"][oid] = label.strip()
        stamp = fmt(self.now())
        for oid in deleted:
            del fld["options"][oid]
            for cid, values in self.course_values.items():
                if values.get(fld["id"]) == oid:
                    values[fld["id"]] = None
                    self._touch_course(cid, stamp)
        for label in new:
            self._add_option(fld, label)
        return fld

    def delete_field(self, field_id: Any) -> None:
        fld = self.get_field(field_id)
        del self.course_fields[fld["id"]]
        stamp = fmt(self.now())
        for cid, values in self.course_values.items():
            if values.pop(fld["id"], None) is not None:
                self._touch_course(cid, stamp)

    def set_course_value(self, course_id: Any, field_id: Any, value: Any = None, *, label: str | None = None) -> Any:
        """Set a course's value of an additional field (control endpoint: the admin picks the
        dropdown option in the course's settings). Dropdowns take an option id or a label."""
        course = self.get_course(course_id)
        fld = self.get_field(field_id)
        if fld["type"] == "dropdown":
            if label is not None:
                matches = [oid for oid, text in fld["options"].items() if text == label]
                if not matches:
                    raise DoceboError(400, f"Field {fld['id']} has no option labelled {label!r}")
                value = matches[0]
            elif value is not None:
                value = as_int(value, "value")
                if value not in fld["options"]:
                    raise DoceboError(400, f"Option {value} does not belong to field {fld['id']}")
        elif label is not None:
            value = label
        self.course_values.setdefault(course["id_course"], {})[fld["id"]] = value
        self._touch_course(course["id_course"], fmt(self.now()))
        return value

    def _touch_course(self, course_id: int, stamp: str) -> None:
        """A course's values changed: its `date_last_updated` moves (so `updated_from` finds it)."""
        course = self.courses.get(course_id)
        if course is not None:
            course["updated_at"] = stamp
            self._course_orders.pop("date_last_updated", None)

    def courses_changed_since(self, bound: str | None) -> Iterable[int] | None:
        """Ids of courses whose `date_last_updated` is on or after `bound` (None: no filter)."""
        if bound is None:
            return None
        return {cid for cid, c in self.courses.items() if str(c["updated_at"]) >= bound}

    def course_value(self, course_id: int, field_id: int) -> Any:
        return self.course_values.get(course_id, {}).get(field_id)

    # -- enrollments (§4.1) ---------------------------------------------------------------------------

    def _index_enrollment(self, rec: dict) -> None:
        key = (rec["course_id"], rec["user_id"])
        self.enrollments[key] = rec
        self.enr_by_course.setdefault(rec["course_id"], {})[rec["user_id"]] = rec
        self.enr_by_user.setdefault(rec["user_id"], {})[rec["course_id"]] = rec

    def get_enrollment(self, course_id: Any, user_id: Any) -> dict:
        course = self.get_course(course_id)
        user = self.get_user(user_id)
        rec = self.enrollments.get((course["id_course"], user["user_id"]))
        if rec is None:
            raise DoceboError(404, f"User {user['user_id']} is not enrolled in course {course['id_course']}")
        return rec

    def enroll(self, course_id: Any, user_id: Any, *, validity_end: str | None = None) -> tuple[dict, bool]:
        """Enroll a user in a course; returns (enrollment, created)."""
        course = self.get_course(course_id)
        user = self.get_user(user_id)
        key = (course["id_course"], user["user_id"])
        if key in self.enrollments:
            return self.enrollments[key], False
        stamp = fmt(self.now())
        rec = {
            "course_id": key[0],
            "user_id": key[1],
            "status": "not_started",
            "enrolled_at": stamp,
            "completed_at": None,
            "validity_end": validity_end,
            "updated_at": stamp,
            "score": 0,
        }
        self._index_enrollment(rec)
        for lp_id in self.lps_by_course.get(key[0], ()):
            lpe = self.lp_enrollments.get((lp_id, key[1]))
            if lpe is not None:
                self._refresh_lp_enrollment(lpe)
        return rec, True

    def iter_enrollments(
        self,
        course_ids: list[int] | None = None,
        user_ids: list[int] | None = None,
        statuses: list[str] | None = None,
        updated_from: str | None = None,
    ) -> Iterator[dict]:
        """Enrollments matching every given filter, walking the smaller index. `updated_from`
        (long form): only those whose `updated_at` is on or after it."""
        source = self._iter_enrollments(course_ids, user_ids, statuses)
        if updated_from is None:
            return source
        return (r for r in source if r["updated_at"] >= updated_from)

    def _iter_enrollments(
        self,
        course_ids: list[int] | None,
        user_ids: list[int] | None,
        statuses: list[str] | None,
    ) -> Iterator[dict]:
        wanted = set(statuses) if statuses else None
        if course_ids is not None and user_ids is not None:
            users = set(user_ids)
            if len(course_ids) <= len(users):
                source = (r for c in course_ids for u, r in self.enr_by_course.get(c, {}).items() if u in users)
            else:
                cset = set(course_ids)
                source = (r for u in user_ids for c, r in self.enr_by_user.get(u, {}).items() if c in cset)
        elif course_ids is not None:
            source = (r for c in course_ids for r in self.enr_by_course.get(c, {}).values())
        elif user_ids is not None:
            source = (r for u in user_ids for r in self.enr_by_user.get(u, {}).values())
        else:
            source = (r for c in self.course_order("id_course") for r in self.enr_by_course.get(c, {}).values())
        if wanted is None:
            return source
        return (r for r in source if r["status"] in wanted)

    def set_enrollment(
        self,
        course_id: Any,
        user_id: Any,
        *,
        status: Any = None,
        date_complete: Any = None,
        score: Any = None,
        date_expire_validity: Any = ...,
        batch: bool = False,
    ) -> dict:
        """Change an enrollment (PUT /learn/v1/enrollments/{course}/{user}, or the learner's
        control endpoint). Becoming `completed` sets the completion date (given or now) and the
        expiry (given, or the course's validity), fires `course.enrollment.completed` and
        completes every learning plan the learner is enrolled in whose courses are now all done."""
        rec = self.get_enrollment(course_id, user_id)
        course = self.courses[rec["course_id"]]
        new_status = normalise_status(status) if status not in (None, "") else rec["status"]
        completion = parse_date(date_complete, "date_complete")
        expire = parse_date(date_expire_validity, "date_expire_validity") if date_expire_validity is not ... else ...
        if score not in (None, ""):
            try:
                score = float(score)
            except (TypeError, ValueError):
                raise DoceboError(400, f"Field 'score_given' must be a number, got {score!r}") from None
        was = rec["status"]
        stamp = fmt(self.now())
        if new_status == "completed":
            if was != "completed" or completion:
                rec["completed_at"] = completion or stamp
                if expire is ... and course.get("validity_days"):
                    done = _as_dt(rec["completed_at"])
                    rec["validity_end"] = fmt(done + timedelta(days=course["validity_days"]))
        else:
            rec["completed_at"] = None
            if was == "completed" and expire is ...:
                rec["validity_end"] = None
        rec["status"] = new_status
        if expire is not ...:
            rec["validity_end"] = expire
        if score not in (None, ""):
            rec["score"] = int(score) if float(score).is_integer() else score
        rec["updated_at"] = stamp
        if new_status != was:
            # Plans follow their courses. No learning-plan webhook is sent: its event name is not
            # known (api/docebo.md §7.2), so the product reads plan status through the API (F3b).
            self._after_course_change(rec)
            if new_status == "completed":
                self.emit(COMPLETION_EVENT, self.completion_payload(rec), batch)
        return rec

    def completion_payload(self, rec: dict) -> dict:
        course = self.courses[rec["course_id"]]
        user = self.users[rec["user_id"]]
        return {
            "fired_at": fmt(self.now()),
            "user_id": rec["user_id"],
            "username": user["username"],
            "course_id": rec["course_id"],
            "course_name": course["name"],
            "level": "learner",
            "status": "completed",
            "enrollment_date": rec["enrolled_at"],
            "completion_date": rec["completed_at"],
            "enrollment_date_begin_validity": None,
            "enrollment_date_end_validity": rec["validity_end"],
            "subscribed_by_id": rec["user_id"],
        }

    # -- learning plans (§4.2) ----------------------------------------------------------------------

    def add_learning_plan(self, lp: dict) -> dict:
        lp_id = int(lp["learning_plan_id"])
        for cid in lp["course_ids"]:
            if cid not in self.courses:
                raise DoceboError(400, f"Course {cid} not found")
        lp.setdefault("created_on", "2023-01-01 00:00:00")
        lp.setdefault("updated_on", lp["created_on"])
        lp.setdefault("uuid", str(uuid.uuid5(uuid.NAMESPACE_URL, f"docebo-sandbox/lp/{lp_id}")))
        self.learning_plans[lp_id] = lp
        self.lpe_by_lp.setdefault(lp_id, {})
        for cid in lp["course_ids"]:
            self.lps_by_course.setdefault(cid, []).append(lp_id)
        return lp

    def get_learning_plan(self, lp_id: Any) -> dict:
        try:
            lp = self.learning_plans.get(int(lp_id))
        except (TypeError, ValueError):
            lp = None
        if lp is None:
            raise DoceboError(404, f"Learning plan {lp_id} not found")
        return lp

    def _index_lp_enrollment(self, rec: dict) -> None:
        key = (rec["learning_plan_id"], rec["user_id"])
        rec.setdefault("status", "not_started")
        rec.setdefault("completed_at", None)
        rec.setdefault("percentage", 0)
        rec.setdefault("updated_at", rec["enrolled_at"])
        self.lp_enrollments[key] = rec
        self.lpe_by_lp.setdefault(key[0], {})[key[1]] = rec
        self.lpe_by_user.setdefault(key[1], {})[key[0]] = rec

    def enroll_learning_plan(self, lp_id: Any, user_id: Any) -> tuple[dict, bool]:
        """Enroll a user in a plan and in each of its courses (as Docebo does)."""
        lp = self.get_learning_plan(lp_id)
        user = self.get_user(user_id)
        key = (lp["learning_plan_id"], user["user_id"])
        if key in self.lp_enrollments:
            return self.lp_enrollments[key], False
        for cid in lp["course_ids"]:
            self.enroll(cid, user["user_id"])
        rec = {"learning_plan_id": key[0], "user_id": key[1], "enrolled_at": fmt(self.now())}
        self._index_lp_enrollment(rec)
        self._refresh_lp_enrollment(rec)
        return rec, True

    def _refresh_lp_enrollment(self, rec: dict) -> bool:
        """Derive a plan enrollment's status from its courses; True if it just became completed."""
        lp = self.learning_plans[rec["learning_plan_id"]]
        mine = self.enr_by_user.get(rec["user_id"], {})
        course_recs = [mine.get(cid) for cid in lp["course_ids"]]
        done = [r for r in course_recs if r is not None and r["status"] == "completed"]
        started = [r for r in course_recs if r is not None and r["status"] != "not_started"]
        before = rec["status"]
        if course_recs and len(done) == len(course_recs):
            rec["status"] = "completed"
            rec["completed_at"] = max(r["completed_at"] for r in done)
        else:
            rec["status"] = "in_progress" if started else "not_started"
            rec["completed_at"] = None
        rec["percentage"] = round(100 * len(done) / len(course_recs)) if course_recs else 0
        if rec["status"] != before:
            rec["updated_at"] = fmt(self.now())
        return rec["status"] == "completed" and before != "completed"

    def _after_course_change(self, course_rec: dict) -> list[dict]:
        completed = []
        uid = course_rec["user_id"]
        for lp_id in self.lps_by_course.get(course_rec["course_id"], ()):
            lpe = self.lp_enrollments.get((lp_id, uid))
            if lpe is not None and self._refresh_lp_enrollment(lpe):
                completed.append(lpe)
        return completed

    def iter_lp_enrollments(
        self,
        lp_ids: list[int] | None = None,
        user_ids: list[int] | None = None,
        statuses: list[str] | None = None,
        updated_from: str | None = None,
    ) -> Iterator[dict]:
        source = self._iter_lp_enrollments(lp_ids, user_ids, statuses)
        if updated_from is None:
            return source
        return (r for r in source if r["updated_at"] >= updated_from)

    def _iter_lp_enrollments(
        self,
        lp_ids: list[int] | None,
        user_ids: list[int] | None,
        statuses: list[str] | None,
    ) -> Iterator[dict]:
        wanted = set(statuses) if statuses else None
        if lp_ids is not None and user_ids is not None:
            users = set(user_ids)
            source = (r for lp in lp_ids for u, r in self.lpe_by_lp.get(lp, {}).items() if u in users)
        elif lp_ids is not None:
            source = (r for lp in lp_ids for r in self.lpe_by_lp.get(lp, {}).values())
        elif user_ids is not None:
            source = (r for u in user_ids for r in self.lpe_by_user.get(u, {}).values())
        else:
            source = (r for lp in sorted(self.lpe_by_lp) for r in self.lpe_by_lp[lp].values())
        if wanted is None:
            return source
        return (r for r in source if r["status"] in wanted)

    # -- external training (§5, [I]) ------------------------------------------------------------------

    TRAINING_FIELDS = ("course_name", "course_type", "date_from", "date_to", "score", "credits", "training_institute")

    def _training_values(self, body: dict, *, creating: bool) -> dict:
        out: dict[str, Any] = {}
        if creating or "user_id" in body:
            uid = as_int(body.get("user_id"), "user_id") if body.get("user_id") not in (None, "") else None
            if uid is None:
                raise DoceboError(400, "Field 'user_id' is required")
            if uid not in self.users:
                raise DoceboError(400, f"User {uid} not found")
            out["user_id"] = uid
        if creating or "course_name" in body:
            name = body.get("course_name")
            if not isinstance(name, str) or not name.strip():
                raise DoceboError(400, "Field 'course_name' is required")
            out["course_name"] = name.strip()
        for key in ("course_type", "training_institute"):
            if key in body or creating:
                value = body.get(key)
                out[key] = "" if value is None else str(value)
        for key in ("date_from", "date_to"):
            if key in body or creating:
                out[key] = parse_date(body.get(key), key, required=creating and key == "date_from")
        for key in ("score", "credits"):
            if key in body or creating:
                value = body.get(key)
                if value in (None, ""):
                    out[key] = None
                else:
                    try:
                        out[key] = float(value)
                    except (TypeError, ValueError):
                        raise DoceboError(400, f"Field '{key}' must be a number, got {value!r}") from None
        date_from = out.get("date_from")
        date_to = out.get("date_to")
        if date_from and date_to and date_to < date_from:
            raise DoceboError(400, "Field 'date_to' must not be before 'date_from'")
        return out

    def create_training(self, body: dict) -> dict:
        values = self._training_values(body, creating=True)
        tid = self._take("training")
        stamp = fmt(self.now())
        rec = {"id": tid, **values, "status": "approved", "created_on": stamp, "updated_on": stamp}
        self.external_trainings[tid] = rec
        self.et_by_user.setdefault(rec["user_id"], {})[tid] = rec
        return rec

    def get_training(self, training_id: Any) -> dict:
        try:
            rec = self.external_trainings.get(int(training_id))
        except (TypeError, ValueError):
            rec = None
        if rec is None:
            raise DoceboError(404, f"External training {training_id} not found")
        return rec

    def update_training(self, training_id: Any, body: dict) -> dict:
        rec = self.get_training(training_id)
        values = self._training_values(body, creating=False)
        merged = {**rec, **values}
        if merged.get("date_from") and merged.get("date_to") and merged["date_to"] < merged["date_from"]:
            raise DoceboError(400, "Field 'date_to' must not be before 'date_from'")
        if values.get("user_id", rec["user_id"]) != rec["user_id"]:
            self.et_by_user[rec["user_id"]].pop(rec["id"], None)
            self.et_by_user.setdefault(values["user_id"], {})[rec["id"]] = rec
        rec.update(values)
        rec["updated_on"] = fmt(self.now())
        return rec

    def delete_training(self, training_id: Any) -> None:
        rec = self.get_training(training_id)
        del self.external_trainings[rec["id"]]
        self.et_by_user.get(rec["user_id"], {}).pop(rec["id"], None)

    def iter_trainings(self, user_ids: list[int] | None = None) -> Iterator[dict]:
        if user_ids is None:
            return iter(self.external_trainings.values())
        return (r for u in user_ids for r in self.et_by_user.get(u, {}).values())

    # -- certifications and awards (§6, [I]) ------------------------------------------------------------

    def _index_award(self, rec: dict) -> None:
        self.awards[rec["id_award"]] = rec
        self.awards_by_user.setdefault(rec["user_id"], {})[rec["id_award"]] = rec
        self.awards_by_cert.setdefault(rec["id_cert"], {})[rec["id_award"]] = rec

    def get_certification(self, id_cert: Any = None, *, code: str | None = None) -> dict:
        if code is not None:
            for cert in self.certifications.values():
                if cert["code"] == code:
                    return cert
            raise DoceboError(404, f"Certification with code {code!r} not found")
        try:
            cert = self.certifications.get(int(id_cert))
        except (TypeError, ValueError):
            cert = None
        if cert is None:
            raise DoceboError(404, f"Certification {id_cert} not found")
        return cert

    def get_award(self, award_id: Any) -> dict:
        try:
            rec = self.awards.get(int(award_id))
        except (TypeError, ValueError):
            rec = None
        if rec is None:
            raise DoceboError(404, f"Certification award {award_id} not found")
        return rec

    def award_status(self, rec: dict) -> str:
        if rec["expire_on"] and rec["expire_on"] <= fmt(self.now()):
            return "expired"
        return "active"

    def iter_awards(
        self, user_ids: list[int] | None = None, cert_ids: list[int] | None = None, updated_from: str | None = None
    ) -> Iterator[dict]:
        source = self._iter_awards(user_ids, cert_ids)
        if updated_from is None:
            return source
        return (r for r in source if r["updated_at"] >= updated_from)

    def _iter_awards(self, user_ids: list[int] | None, cert_ids: list[int] | None) -> Iterator[dict]:
        if user_ids is not None:
            source = (r for u in user_ids for r in self.awards_by_user.get(u, {}).values())
            if cert_ids is not None:
                certs = set(cert_ids)
                source = (r for r in source if r["id_cert"] in certs)
            return source
        if cert_ids is not None:
            return (r for c in cert_ids for r in self.awards_by_cert.get(c, {}).values())
        return iter(self.awards.values())

    def create_award(self, body: dict, *, batch: bool = False) -> dict:
        """Award a certification (fires `certification.awarded`). One award per user and
        certification: a second one is refused with 409 (update the existing award instead)."""
        if body.get("id_cert") in (None, "") and body.get("certification_code"):
            cert = self.get_certification(code=str(body["certification_code"]))
        else:
            if body.get("id_cert") in (None, ""):
                raise DoceboError(400, "Field 'id_cert' is required")
            cid = as_int(body.get("id_cert"), "id_cert")
            if cid not in self.certifications:
                raise DoceboError(400, f"Certification {cid} not found")
            cert = self.certifications[cid]
        if body.get("user_id") in (None, ""):
            raise DoceboError(400, "Field 'user_id' is required")
        uid = as_int(body.get("user_id"), "user_id")
        if uid not in self.users:
            raise DoceboError(400, f"User {uid} not found")
        for existing in self.awards_by_user.get(uid, {}).values():
            if existing["id_cert"] == cert["id_cert"]:
                raise DoceboError(409, f"User {uid} already holds certification {cert['id_cert']} (award {existing['id_award']})")
        issued = parse_date(body.get("issued_on"), "issued_on") or fmt(self.now())
        if "expire_on" in body:
            expire = parse_date(body.get("expire_on"), "expire_on")
        elif cert.get("validity_days"):
            expire = fmt(_as_dt(issued) + timedelta(days=cert["validity_days"]))
        else:
            expire = None
        if expire and expire < issued:
            raise DoceboError(400, "Field 'expire_on' must not be before 'issued_on'")
        rec = {
            "id_award": self._take("award"),
            "id_cert": cert["id_cert"],
            "user_id": uid,
            "issued_on": issued,
            "expire_on": expire,
            "source": str(body.get("source") or ""),
            "external_link": str(body.get("external_link") or ""),
            "updated_at": fmt(self.now()),
        }
        self._index_award(rec)
        self.emit("certification.awarded", self.award_payload(rec), batch)
        return rec

    def update_award(self, award_id: Any, body: dict, *, batch: bool = False) -> dict:
        rec = self.get_award(award_id)
        changes: dict[str, Any] = {}
        if "issued_on" in body:
            changes["issued_on"] = parse_date(body["issued_on"], "issued_on", required=True)
        if "expire_on" in body:
            changes["expire_on"] = parse_date(body["expire_on"], "expire_on")
        for key in ("source", "external_link"):
            if key in body:
                changes[key] = "" if body[key] is None else str(body[key])
        merged = {**rec, **changes}
        if merged["expire_on"] and merged["expire_on"] < merged["issued_on"]:
            raise DoceboError(400, "Field 'expire_on' must not be before 'issued_on'")
        rec.update(changes)
        rec["updated_at"] = fmt(self.now())
        self.emit("certification.updated", self.award_payload(rec), batch)
        return rec

    def revoke_award(self, award_id: Any, *, batch: bool = False) -> dict:
        rec = self.get_award(award_id)
        del self.awards[rec["id_award"]]
        self.awards_by_user.get(rec["user_id"], {}).pop(rec["id_award"], None)
        self.awards_by_cert.get(rec["id_cert"], {}).pop(rec["id_award"], None)
        self.emit("certification.revoked", self.award_payload(rec), batch)
        return rec

    def award_payload(self, rec: dict) -> dict:
        cert = self.certifications[rec["id_cert"]]
        user = self.users.get(rec["user_id"], {})
        return {
            "fired_at": fmt(self.now()),
            "user_id": rec["user_id"],
            "username": user.get("username", ""),
            "certification_id": rec["id_cert"],
            "certification_code": cert["code"],
            "award_id": rec["id_award"],
            "issued_on": rec["issued_on"],
            "expire_on": rec["expire_on"],
        }

    # -- helpers ----------------------------------------------------------------------------------------

    def _take(self, kind: str) -> int:
        value = self._next[kind]
        self._next[kind] = value + 1
        return value
