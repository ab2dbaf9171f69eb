"""The Docebo sandbox tenant's core (api/docebo.md): its clock (with time travel for tests),
OAuth2 clients and tokens (§1.2), users (§2), courses and their additional fields (§3), and the
empty collections the other parts fill. Enrollments and learning plans: learning.py; external
training and certification awards: awards.py; loading and reset: state.py.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from services.sandbox.demo_data import DemoData
from services.sandbox.docebo.records import DoceboError, OAuthClient, Token, as_int, fmt, parse_date


class DoceboTenant:
    """Users, courses, fields and credentials of the sandbox tenant."""

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
        blob = (user["first_name"], user["last_name"], user["username"], user["email"], fullname)
        self._user_blob[uid] = " ".join(blob).lower()
        self._user_orders.clear()
        return user

    USER_UPDATABLE = {"email": "email", "username": "username", "firstname": "first_name", "first_name": "first_name",
                      "lastname": "last_name", "last_name": "last_name"}

    def update_user(self, user_id: Any, body: dict) -> dict:
        """`PUT /manage/v1/user/{id}` (docebo.md, users): e-mail, username, names; a taken e-mail or
        username (another user's) is refused like Docebo does (400)."""
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
            taken = [u for u in self._user_exact.get(value.lower(), ())
                     if u != user["user_id"] and str(self.users[u][attr]).lower() == value.lower()]
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
        new: Iterable[str] = (),
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

    def _touch_course(self, course_id: int, stamp: str | None) -> None:
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

    # -- helpers ----------------------------------------------------------------------------------------

    def _take(self, kind: str) -> int:
        value = self._next[kind]
        self._next[kind] = value + 1
        return value


__all__ = ["DoceboTenant"]
