"""The world behind the Credly sandbox: one organisation's badge templates, issued badges and
events, with the rules of credly.md §2–§4 that a client can observe.

Scale: records are slotted objects indexed by id, by template, by recipient e-mail and by
``issuer_earner_id`` (the large demo holds hundreds of templates and tens of thousands of badges).
A list query picks the smallest index that applies, filters, sorts, and keeps the resulting list
of references in a small cache keyed by the query and the state's version, so paging through a big
result never re-sorts the world per page. JSON is built only for the page being answered.

Decisions the notes leave open ([I], documented here once):

* Duplicates (credly.md §3.7): same template and the same recipient e-mail (case-insensitive) or
  the same non-blank ``issuer_earner_id`` as a badge in state ``pending`` or ``accepted``.
  Revoked, rejected and replaced badges do not block a new issue.
* Only ``active`` templates issue badges; archived, draft or unknown ids get the 422 "Invalid or
  missing Badge Template ID: ".
* Events keep a snapshot of the badge / template at the time of the change (a deleted badge can
  still be read through its ``badge.deleted`` event). Events list oldest first.
* Unknown filter and sort keys are ignored, so the sandbox never honours a filter the real API may
  not have (clients must not rely on one).
* Revoking needs a reason; a revoked or replaced badge cannot be revoked or replaced again (422).
  A replacement keeps the old badge's state unless the recipient e-mail changes (then pending).
"""

from __future__ import annotations

import copy
import random
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dateutil import parser as dateparser

DEFAULT_TOKEN = "credly-sandbox-token"
DEFAULT_ORG_NAME = "Sandbox Academy"
WEB_BASE = "https://credly.sandbox.invalid"
IMAGE_BASE = "https://images.credly.sandbox.invalid"

TEMPLATE_STATES = ("active", "archived", "draft")
BADGE_STATES = ("pending", "accepted", "rejected", "revoked", "replaced")
HOLDING_STATES = ("pending", "accepted")

REQUIRED_ISSUE_FIELDS = (
    ("recipient_email", "Recipient email"),
    ("issued_to_first_name", "Issued to first name"),
    ("issued_to_last_name", "Issued to last name"),
    ("badge_template_id", "Badge template"),
    ("issued_at", "Issued at"),
)
INVALID_TEMPLATE = "Invalid or missing Badge Template ID: "
ALREADY_HAS = "User already has this badge"
NOT_FOUND = "Resource not found"
BATCH_LIMIT = 50

_TEMPLATE_EPOCH = datetime(2023, 1, 2, 9, 0, tzinfo=UTC)
_USER_NAMESPACE = uuid.UUID("6f1c1f0e-2a57-4d5e-9a51-0c3e5b7f2d11")


class CredlyError(Exception):
    """An API error: HTTP ``status``, Credly's ``message`` and extra ``data`` keys."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"data": {"message": self.message, **self.extra}, "metadata": None}


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Template:
    id: str
    name: str
    state: str
    allow_duplicate_badges: bool
    description: str
    default_expires_in_days: int | None
    created_at: datetime
    updated_at: datetime
    state_updated_at: datetime
    public: bool = True


@dataclass(slots=True)
class Badge:
    id: str
    template_id: str
    recipient_email: str
    first_name: str
    last_name: str
    issued_at: datetime
    expires_at: datetime | None
    state: str
    issuer_earner_id: str | None
    created_at: datetime
    updated_at: datetime
    state_updated_at: datetime
    middle_name: str | None = None
    locale: str = "en"
    suppress_email: bool = False
    claimed: bool = False  # an earner account exists (accepted or rejected once)
    revocation_reason: str | None = None
    replaces_badge_id: str | None = None
    replacement_badge_id: str | None = None
    evidence: list | None = None
    country_name: str | None = None
    state_or_province: str | None = None
    issuer_earner_group: dict | None = None
    seq: int = 0  # creation order (the default list order)

    @property
    def email_key(self) -> str:
        return self.recipient_email.lower()


@dataclass(slots=True)
class Event:
    id: str
    event_type: str
    occurred_at: datetime
    badge: Badge | None = None
    template: Template | None = None


# --------------------------------------------------------------------------------------------
# Formatting helpers
# --------------------------------------------------------------------------------------------


def iso(dt: datetime | None) -> str | None:
    """``2014-04-01T14:41:00.000Z`` (credly.md §1.9)."""
    if dt is None:
        return None
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def iso_date(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(UTC).strftime("%Y-%m-%d")


def parse_time(value: Any) -> datetime:
    """Lenient, as the real server is (credly.md §1.9); naive times are UTC."""
    if isinstance(value, datetime):
        dt = value
    else:
        text = str(value).strip()
        if not text:
            raise ValueError("blank")
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            dt = dateparser.parse(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def parse_filter(raw: str | None) -> dict[str, list[str]]:
    """``k::v|k2::v1,v2`` → ``{"k": ["v"], "k2": ["v1", "v2"]}`` (credly.md §1.6)."""
    out: dict[str, list[str]] = {}
    if not raw:
        return out
    for part in raw.split("|"):
        key, sep, value = part.partition("::")
        key = key.strip()
        if not sep or not key:
            continue
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            out[key] = [value]  # a quoted value is one strict value, commas and all
        else:
            out[key] = [v.strip() for v in value.split(",") if v.strip() != ""]
    return out


def parse_sort(raw: str | None) -> list[tuple[str, bool]]:
    """``a|-b`` → ``[("a", False), ("b", True)]`` (True = descending)."""
    out = []
    for part in (raw or "").split("|"):
        part = part.strip()
        if part:
            out.append((part[1:], True) if part.startswith("-") else (part, False))
    return out


def _sorted(items: list, sort: list[tuple[str, bool]], keys: Mapping[str, Callable]) -> list:
    for name, descending in reversed([(n, d) for n, d in sort if n in keys]):
        key = keys[name]
        present = [x for x in items if key(x) is not None]
        missing = [x for x in items if key(x) is None]
        present.sort(key=key, reverse=descending)
        items = present + missing if not descending else missing + present
    return items


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------


class CredlyState:
    """One Credly organisation. Thread-safe (one lock); ``listeners`` get every new ``Event``."""

    def __init__(
        self,
        organization_id: str | None = None,
        *,
        token: str = DEFAULT_TOKEN,
        organization_name: str = DEFAULT_ORG_NAME,
        seed: int = 0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._rng = random.Random(f"credly-sandbox:{seed}")
        self.seed = seed
        self.organization_id = organization_id or self._new_id()
        self.organization_name = organization_name
        self.token = token
        self.token_expired = False
        self.clock = clock or (lambda: datetime.now(UTC))
        # Time travel (tests and benchmarks of incremental runs): added to `clock`.
        self.time_offset = timedelta(0)
        # The date-range filters of lists (``created_at_min`` … ``updated_at_max``): documented for
        # templates, inferred for badges [INF]. Switched off, they are accepted and not applied,
        # as by an organisation whose API does not have them.
        self.honour_date_filters = True
        self.listeners: list[Callable[[Event], None]] = []
        self._lock = threading.RLock()
        self._source: Callable[[], Any] | None = None
        self._clear()

    def _clear(self) -> None:
        self.templates: dict[str, Template] = {}
        self.badges: dict[str, Badge] = {}
        self.events: dict[str, Event] = {}
        self._by_template: dict[str, dict[str, None]] = {}
        self._by_email: dict[str, dict[str, None]] = {}
        self._by_earner: dict[str, dict[str, None]] = {}
        self._cache: OrderedDict[tuple, tuple[int, list]] = OrderedDict()
        self.version = 0
        self._seq = 0

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_demo(cls, data: Any, *, token: str = DEFAULT_TOKEN, **kw: Any) -> CredlyState:
        """The Credly half of a ``demo_data.generate()`` world (attributes or mapping keys
        ``organization_id``, ``templates``, ``badges``). ``reset()`` reloads it."""
        get = (lambda k: data[k]) if isinstance(data, Mapping) else (lambda k: getattr(data, k))
        state = cls(get("organization_id"), token=token, seed=kw.pop("seed", getattr(data, "seed", 0)), **kw)
        state._source = lambda: data
        state._load(get("templates"), get("badges"))
        return state

    def _load(self, templates: Iterable[Mapping], badges: Iterable[Mapping]) -> None:
        for i, t in enumerate(templates):
            created = _TEMPLATE_EPOCH + timedelta(hours=i)
            self._put_template(
                Template(
                    id=t["id"],
                    name=t["name"],
                    state=t.get("state", "active"),
                    allow_duplicate_badges=bool(t.get("allow_duplicate_badges", False)),
                    description=t.get("description") or "",
                    default_expires_in_days=t.get("default_expires_in_days"),
                    created_at=created,
                    updated_at=created,
                    state_updated_at=created,
                )
            )
        for b in badges:
            issued = parse_time(b["issued_at"])
            state = b.get("state", "pending")
            badge = Badge(
                id=b["id"],
                template_id=b["badge_template_id"],
                recipient_email=b["recipient_email"],
                first_name=b.get("issued_to_first_name") or "",
                last_name=b.get("issued_to_last_name") or "",
                issued_at=issued,
                expires_at=parse_time(b["expires_at"]) if b.get("expires_at") else None,
                state=state,
                issuer_earner_id=b.get("issuer_earner_id"),
                created_at=issued,
                updated_at=issued,
                state_updated_at=issued,
                claimed=state in ("accepted", "rejected"),
                revocation_reason="Revoked by the organization" if state == "revoked" else None,
            )
            self._put_badge(badge)

    def reset(self) -> None:
        """Back to the data this state was built from (empty if built empty)."""
        with self._lock:
            self._clear()
            self._rng = random.Random(f"credly-sandbox:{self.seed}")
            self.token_expired = False
            if self._source is not None:
                data = self._source()
                get = (lambda k: data[k]) if isinstance(data, Mapping) else (lambda k: getattr(data, k))
                self._load(get("templates"), get("badges"))

    # -- ids, time, events --------------------------------------------------------------------

    def _new_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def now(self) -> datetime:
        return (self.clock() + self.time_offset).astimezone(UTC)

    def advance(self, seconds: float) -> datetime:
        """Move this organisation's clock forward (time travel); returns the new now."""
        if seconds < 0:
            raise CredlyError(422, "The clock only moves forward")
        self.time_offset += timedelta(seconds=seconds)
        return self.now()

    def _emit(self, event_type: str, *, badge: Badge | None = None, template: Template | None = None) -> Event:
        event = Event(
            id=self._new_id(),
            event_type=event_type,
            occurred_at=self.now(),
            badge=copy.copy(badge) if badge is not None else None,
            template=copy.copy(template) if template is not None else None,
        )
        self.events[event.id] = event
        for listener in list(self.listeners):
            listener(event)
        return event

    def notice(self, event: Event) -> dict[str, Any]:
        """The thin webhook body (credly.md §4.2)."""
        return {
            "id": event.id,
            "organization_id": self.organization_id,
            "event_type": event.event_type,
            "occurred_at": iso(event.occurred_at),
        }

    def _changed(self) -> None:
        self.version += 1
        self._cache.clear()

    # -- indexes ------------------------------------------------------------------------------

    def _put_template(self, template: Template) -> None:
        self.templates[template.id] = template
        self._by_template.setdefault(template.id, {})
        self._changed()

    def _put_badge(self, badge: Badge) -> None:
        self._seq += 1
        badge.seq = self._seq
        self.badges[badge.id] = badge
        self._by_template.setdefault(badge.template_id, {})[badge.id] = None
        self._by_email.setdefault(badge.email_key, {})[badge.id] = None
        if badge.issuer_earner_id:
            self._by_earner.setdefault(str(badge.issuer_earner_id), {})[badge.id] = None
        self._changed()

    def _drop_badge(self, badge: Badge) -> None:
        del self.badges[badge.id]
        for index, key in (
            (self._by_template, badge.template_id),
            (self._by_email, badge.email_key),
            (self._by_earner, str(badge.issuer_earner_id) if badge.issuer_earner_id else None),
        ):
            if key is not None and key in index:
                index[key].pop(badge.id, None)
                if not index[key] and index is not self._by_template:
                    del index[key]
        self._changed()

    def badges_count(self, template_id: str) -> int:
        return len(self._by_template.get(template_id, ()))

    # -- templates ----------------------------------------------------------------------------

    def get_template(self, template_id: str) -> Template:
        template = self.templates.get(template_id)
        if template is None:
            raise CredlyError(404, NOT_FOUND)
        return template

    def add_template(
        self,
        name: str,
        *,
        state: str = "active",
        allow_duplicate_badges: bool = False,
        description: str = "",
        default_expires_in_days: int | None = None,
        template_id: str | None = None,
    ) -> Template:
        """As the Credly admin: create a template (``badge_template.created``)."""
        if _blank(name):
            raise CredlyError(422, "Name can't be blank")
        if state not in TEMPLATE_STATES:
            raise CredlyError(422, f"State must be one of {', '.join(TEMPLATE_STATES)}")
        with self._lock:
            if template_id and template_id in self.templates:
                raise CredlyError(422, "Id has already been taken")
            now = self.now()
            template = Template(
                id=template_id or self._new_id(),
                name=str(name),
                state=state,
                allow_duplicate_badges=truthy(allow_duplicate_badges),
                description=description or "",
                default_expires_in_days=_optional_int(default_expires_in_days),
                created_at=now,
                updated_at=now,
                state_updated_at=now,
            )
            self._put_template(template)
            self._emit("badge_template.created", template=template)
            return template

    def update_template(self, template_id: str, **changes: Any) -> Template:
        """As the Credly admin: rename, archive, change settings (``badge_template.changed``)."""
        allowed = {"name", "state", "allow_duplicate_badges", "description", "default_expires_in_days", "public"}
        unknown = set(changes) - allowed
        if unknown:
            raise CredlyError(422, f"Unknown template attribute(s): {', '.join(sorted(unknown))}")
        with self._lock:
            template = self.get_template(template_id)
            if "name" in changes and _blank(changes["name"]):
                raise CredlyError(422, "Name can't be blank")
            if "state" in changes and changes["state"] not in TEMPLATE_STATES:
                raise CredlyError(422, f"State must be one of {', '.join(TEMPLATE_STATES)}")
            now = self.now()
            for name, value in changes.items():
                if name in ("allow_duplicate_badges", "public"):
                    value = truthy(value)
                elif name == "default_expires_in_days":
                    value = _optional_int(value)
                if name == "state" and value != template.state:
                    template.state_updated_at = now
                setattr(template, name, value)
            template.updated_at = now
            self._changed()
            self._emit("badge_template.changed", template=template)
            return template

    def delete_template(self, template_id: str) -> None:
        """As the Credly admin: delete a template that has no badges (``badge_template.deleted``)."""
        with self._lock:
            template = self.get_template(template_id)
            if self._by_template.get(template_id):
                raise CredlyError(422, "Badge template has issued badges; archive it instead")
            del self.templates[template_id]
            self._by_template.pop(template_id, None)
            self._changed()
            self._emit("badge_template.deleted", template=template)

    def query_templates(self, filters: Mapping[str, list[str]], sort: list[tuple[str, bool]]) -> list[Template]:
        """credly.md §2.2 filters ``state``, ``name`` (partial, or strict in double quotes),
        ``query`` (name or description), ``public``; sorts ``name``, ``created_at``,
        ``updated_at``, ``badges_count``, ``state``."""
        key = ("templates", _freeze(filters), tuple(sort), self.honour_date_filters)
        with self._lock:
            cached = self._cache.get(key)
            if cached and cached[0] == self.version:
                self._cache.move_to_end(key)
                return cached[1]
            items = list(self.templates.values())
            if "state" in filters:
                states = {s.lower() for s in filters["state"]}
                items = [t for t in items if t.state in states]
            if "name" in filters and filters["name"]:
                raw = ",".join(filters["name"])
                if len(raw) >= 2 and raw.startswith('"') and raw.endswith('"'):
                    exact = raw[1:-1].lower()
                    items = [t for t in items if t.name.lower() == exact]
                else:
                    part = raw.lower()
                    items = [t for t in items if part in t.name.lower()]
            if "query" in filters and filters["query"]:
                part = ",".join(filters["query"]).lower()
                items = [t for t in items if part in t.name.lower() or part in t.description.lower()]
            if "public" in filters and filters["public"]:
                want = truthy(filters["public"][0])
                items = [t for t in items if t.public == want]
            items = self._date_range(items, filters)
            items = _sorted(
                items,
                sort,
                {
                    "name": lambda t: t.name.lower(),
                    "created_at": lambda t: t.created_at,
                    "updated_at": lambda t: t.updated_at,
                    "badges_count": lambda t: self.badges_count(t.id),
                    "state": lambda t: t.state,
                },
            )
            self._remember(key, items)
            return items

    # -- badges: queries ----------------------------------------------------------------------

    def get_badge(self, badge_id: str) -> Badge:
        badge = self.badges.get(badge_id)
        if badge is None:
            raise CredlyError(404, NOT_FOUND)
        return badge

    def query_badges(self, filters: Mapping[str, list[str]], sort: list[tuple[str, bool]]) -> list[Badge]:
        """Filters ``recipient_email`` / ``recipient_email_all`` (exact, any case),
        ``badge_template_id``, ``issuer_earner_id``, ``state`` (comma lists) and ``query``
        (partial, name or e-mail); sorts ``issued_at``, ``created_at``, ``updated_at``,
        ``state_updated_at``, ``expires_at``, ``recipient_email``, ``state`` (credly.md §3.4)."""
        key = ("badges", _freeze(filters), tuple(sort), self.honour_date_filters)
        with self._lock:
            cached = self._cache.get(key)
            if cached and cached[0] == self.version:
                self._cache.move_to_end(key)
                return cached[1]
            candidates: dict[str, None] | None = None
            indexed = [
                (
                    self._by_email,
                    [e.lower() for e in filters.get("recipient_email", []) + filters.get("recipient_email_all", [])],
                ),
                (self._by_template, filters.get("badge_template_id", [])),
                (self._by_earner, filters.get("issuer_earner_id", [])),
            ]
            for index, wanted in indexed:
                if not wanted:
                    continue
                ids: dict[str, None] = {}
                for w in wanted:
                    ids.update(index.get(w, {}))
                candidates = ids if candidates is None else {i: None for i in candidates if i in ids}
            if candidates is None:
                items = list(self.badges.values())
            else:
                # keep creation order: ids from several index buckets are merged
                items = sorted((self.badges[i] for i in candidates), key=lambda b: b.seq)
            emails = {e.lower() for e in filters.get("recipient_email", []) + filters.get("recipient_email_all", [])}
            if emails:
                items = [b for b in items if b.email_key in emails]
            if filters.get("badge_template_id"):
                wanted_t = set(filters["badge_template_id"])
                items = [b for b in items if b.template_id in wanted_t]
            if filters.get("issuer_earner_id"):
                wanted_e = set(filters["issuer_earner_id"])
                items = [b for b in items if str(b.issuer_earner_id) in wanted_e]
            if filters.get("state"):
                states = {s.lower() for s in filters["state"]}
                items = [b for b in items if b.state in states]
            if filters.get("query"):
                part = ",".join(filters["query"]).lower()
                items = [b for b in items if part in b.email_key or part in _full_name(b).lower()]
            items = self._date_range(items, filters)
            items = _sorted(
                items,
                sort,
                {
                    "issued_at": lambda b: b.issued_at,
                    "created_at": lambda b: b.created_at,
                    "updated_at": lambda b: b.updated_at,
                    "state_updated_at": lambda b: b.state_updated_at,
                    "expires_at": lambda b: b.expires_at,
                    "recipient_email": lambda b: b.email_key,
                    "state": lambda b: b.state,
                },
            )
            self._remember(key, items)
            return items

    def _date_range(self, items: list, filters: Mapping[str, list[str]]) -> list:
        """``created_at_min/max``, ``updated_at_min/max`` (credly.md §2.2, inclusive): a date
        ``YYYY-MM-DD`` compares whole days (UTC); a date-time compares instants."""
        if not self.honour_date_filters:
            return items
        for key in ("created_at_min", "created_at_max", "updated_at_min", "updated_at_max"):
            values = filters.get(key)
            if not values:
                continue
            raw = ",".join(values).strip()
            try:
                bound = parse_time(raw)
            except (ValueError, OverflowError):
                raise CredlyError(422, f"Invalid date for {key}: {raw!r}") from None
            attr = key.rsplit("_", 1)[0]
            minimum = key.endswith("_min")
            if len(raw) == 10:  # a date: whole days
                day = bound.date()
                if minimum:
                    items = [x for x in items if getattr(x, attr).date() >= day]
                else:
                    items = [x for x in items if getattr(x, attr).date() <= day]
            elif minimum:
                items = [x for x in items if getattr(x, attr) >= bound]
            else:
                items = [x for x in items if getattr(x, attr) <= bound]
        return items

    def _remember(self, key: tuple, items: list) -> None:
        self._cache[key] = (self.version, items)
        while len(self._cache) > 16:
            self._cache.popitem(last=False)

    def holders(self, template_id: str, email: str | None, earner_id: str | None, *, exclude: str | None = None) -> list[Badge]:
        """Badges of ``template_id`` that make a new issue a duplicate (credly.md §3.7)."""
        ids: dict[str, None] = {}
        if email:
            ids.update(self._by_email.get(email.lower(), {}))
        if earner_id:
            ids.update(self._by_earner.get(str(earner_id), {}))
        return [
            self.badges[i]
            for i in ids
            if i != exclude and self.badges[i].template_id == template_id and self.badges[i].state in HOLDING_STATES
        ]

    # -- badges: changes ----------------------------------------------------------------------

    def _prepare(
        self,
        fields: Mapping[str, Any],
        *,
        defaults: Badge | None = None,
        check_duplicates: bool = True,
        exclude: str | None = None,
        pending: Iterable[Badge] = (),
    ) -> tuple[Badge, Badge | None]:
        """Validate issue fields into an unsaved ``Badge``; also returns the badge to replace
        when ``duplicate_behavior`` is ``replace``. Raises ``CredlyError`` (422)."""
        f = dict(fields)
        if defaults is not None:  # replace: the old badge supplies what is not sent
            f.setdefault("recipient_email", defaults.recipient_email)
            f.setdefault("issued_to_first_name", defaults.first_name)
            f.setdefault("issued_to_last_name", defaults.last_name)
            if "issuer_earner_id" not in f:
                f["issuer_earner_id"] = defaults.issuer_earner_id
        template_id = f.get("badge_template_id")
        template = self.templates.get(str(template_id)) if not _blank(template_id) else None
        if template is None or template.state != "active":
            raise CredlyError(422, INVALID_TEMPLATE)
        for name, label in REQUIRED_ISSUE_FIELDS:
            if _blank(f.get(name)):
                raise CredlyError(422, f"{label} can't be blank")
        email = str(f["recipient_email"]).strip()
        local, at, domain = email.partition("@")
        if not local or not at or "." not in domain or " " in email:
            raise CredlyError(422, "Recipient email is invalid")
        try:
            issued_at = parse_time(f["issued_at"])
        except (ValueError, OverflowError, TypeError):
            raise CredlyError(422, "Issued at is invalid") from None
        raw_exp = f.get("expires_at", None)
        if raw_exp is False or (isinstance(raw_exp, str) and raw_exp.strip().lower() == "false"):
            expires_at = None  # false = never expires
        elif raw_exp is None or (isinstance(raw_exp, str) and not raw_exp.strip()):
            days = template.default_expires_in_days
            expires_at = issued_at + timedelta(days=days) if days else None
        else:
            try:
                expires_at = parse_time(raw_exp)
            except (ValueError, OverflowError, TypeError):
                raise CredlyError(422, "Expires at is invalid") from None
            if expires_at <= issued_at:
                raise CredlyError(422, "Expires at must be after issued at")
        earner = f.get("issuer_earner_id")
        earner = None if _blank(earner) else str(earner)
        evidence = f.get("evidence")
        if evidence is not None and not isinstance(evidence, list):
            evidence = [evidence] if isinstance(evidence, dict) else None
        group = f.get("issuer_earner_group")
        now = self.now()
        badge = Badge(
            id=self._new_id(),
            template_id=template.id,
            recipient_email=email,
            first_name=str(f["issued_to_first_name"]),
            last_name=str(f["issued_to_last_name"]),
            middle_name=None if _blank(f.get("issued_to_middle_name")) else str(f["issued_to_middle_name"]),
            issued_at=issued_at,
            expires_at=expires_at,
            state="pending",
            issuer_earner_id=earner,
            created_at=now,
            updated_at=now,
            state_updated_at=now,
            locale=str(f.get("locale") or "en"),
            suppress_email=truthy(f.get("suppress_badge_notification_email", False)),
            evidence=[_evidence(e, self._new_id) for e in evidence] if evidence else [],
            country_name=None if _blank(f.get("country_name")) else str(f["country_name"]),
            state_or_province=None if _blank(f.get("state_or_province")) else str(f["state_or_province"]),
            issuer_earner_group=group if isinstance(group, dict) else None,
        )
        to_replace = None
        behaviour = str(f.get("duplicate_behavior") or "").lower()
        if check_duplicates and behaviour != "allow" and not template.allow_duplicate_badges:
            held = self.holders(template.id, email, earner, exclude=exclude)
            held += [
                p
                for p in pending
                if p.template_id == template.id and (p.email_key == email.lower() or (earner and p.issuer_earner_id == earner))
            ]
            if held:
                if behaviour == "replace" and held[0].id in self.badges:
                    to_replace = held[0]
                else:
                    raise CredlyError(422, ALREADY_HAS)
        return badge, to_replace

    def issue(self, fields: Mapping[str, Any], *, check_duplicates: bool = True) -> Badge:
        """``POST …/badges``: a new pending badge (``badge.created``)."""
        with self._lock:
            badge, to_replace = self._prepare(fields, check_duplicates=check_duplicates)
            if to_replace is not None:
                return self._replace_with(to_replace, badge)
            self._put_badge(badge)
            self._emit("badge.created", badge=badge)
            return badge

    def issue_batch(self, items: list[Mapping[str, Any]]) -> list[Badge]:
        """``POST …/badges/batch``: all or nothing [I]; the first bad item gives 422 with
        ``error_index`` (credly.md §1.4, Totara's handling)."""
        if not isinstance(items, list) or not items:
            raise CredlyError(422, "Badges can't be blank")
        if len(items) > BATCH_LIMIT:
            raise CredlyError(422, f"A batch holds at most {BATCH_LIMIT} badges")
        with self._lock:
            prepared: list[tuple[Badge, Badge | None]] = []
            for index, item in enumerate(items):
                if not isinstance(item, Mapping):
                    raise CredlyError(422, "Badge attributes must be an object", error_index=index)
                try:
                    prepared.append(self._prepare(item, pending=[p for p, _ in prepared]))
                except CredlyError as exc:
                    raise CredlyError(exc.status, exc.message, error_index=index) from None
            out = []
            for badge, to_replace in prepared:
                if to_replace is not None:
                    out.append(self._replace_with(to_replace, badge))
                else:
                    self._put_badge(badge)
                    self._emit("badge.created", badge=badge)
                    out.append(badge)
            return out

    def revoke(self, badge_id: str, reason: Any, *, suppress_notification: Any = False) -> Badge:
        """``PUT …/badges/{id}/revoke`` (``badge.state.changed``)."""
        with self._lock:
            badge = self.get_badge(badge_id)
            if _blank(reason):
                raise CredlyError(422, "Reason can't be blank")
            if badge.state == "revoked":
                raise CredlyError(422, "Badge has already been revoked")
            if badge.state == "replaced":
                raise CredlyError(422, "A replaced badge cannot be revoked")
            self._set_state(badge, "revoked")
            badge.revocation_reason = str(reason)
            self._emit("badge.state.changed", badge=badge)
            return badge

    def replace(self, badge_id: str, fields: Mapping[str, Any]) -> Badge:
        """``POST …/badges/{id}/replace``: a new badge with ``replaces_badge_id``; the old one
        becomes ``replaced`` with ``replacement_badge_id`` (credly.md §3.6)."""
        with self._lock:
            old = self.get_badge(badge_id)
            if old.state in ("revoked", "replaced"):
                raise CredlyError(422, f"A {old.state} badge cannot be replaced")
            for name, label in (("badge_template_id", "Badge template"), ("issued_at", "Issued at")):
                if _blank(fields.get(name)):
                    raise CredlyError(422, INVALID_TEMPLATE if name == "badge_template_id" else f"{label} can't be blank")
            new, _ = self._prepare(fields, defaults=old, exclude=old.id)
            return self._replace_with(old, new)

    def _replace_with(self, old: Badge, new: Badge) -> Badge:
        same_person = new.email_key == old.email_key
        new.state = old.state if same_person and old.state in ("pending", "accepted") else "pending"
        new.claimed = same_person and old.claimed
        new.replaces_badge_id = old.id
        self._put_badge(new)
        self._emit("badge.created", badge=new)
        self._set_state(old, "replaced")
        old.replacement_badge_id = new.id
        self._emit("badge.state.changed", badge=old)
        return new

    def delete_badge(self, badge_id: str) -> None:
        """``DELETE …/badges/{id}`` (``badge.deleted``)."""
        with self._lock:
            badge = self.get_badge(badge_id)
            self._drop_badge(badge)
            self._emit("badge.deleted", badge=badge)

    def earner_decides(self, badge_id: str, accept: bool) -> Badge:
        """As the earner: accept or reject a pending badge (``badge.state.changed``)."""
        with self._lock:
            badge = self.get_badge(badge_id)
            if badge.state != "pending":
                raise CredlyError(422, f"Only a pending badge can be {'accepted' if accept else 'rejected'}")
            self._set_state(badge, "accepted" if accept else "rejected")
            badge.claimed = True
            self._emit("badge.state.changed", badge=badge)
            return badge

    def _set_state(self, badge: Badge, state: str) -> None:
        now = self.now()
        badge.state = state
        badge.state_updated_at = now
        badge.updated_at = now
        self._changed()

    # -- events -------------------------------------------------------------------------------

    def get_event(self, event_id: str) -> Event:
        event = self.events.get(event_id)
        if event is None:
            raise CredlyError(404, NOT_FOUND)
        return event

    def list_events(self) -> list[Event]:
        with self._lock:
            return list(self.events.values())

    # -- JSON ---------------------------------------------------------------------------------

    def owner_json(self) -> dict[str, Any]:
        slug = "sandbox-academy"
        return {
            "type": "Organization",
            "id": self.organization_id,
            "name": self.organization_name,
            "url": f"{WEB_BASE}/organizations/{slug}",
            "vanity_url": f"{WEB_BASE}/org/{slug}",
            "vanity_slug": slug,
            "verified": True,
            "viewable": True,
            "enable_blockchain": False,
        }

    def organization_json(self, webhook_url: str | None) -> dict[str, Any]:
        return {
            "id": self.organization_id,
            "name": self.organization_name,
            "website_url": "https://academy.example.com",
            "webhook_url": webhook_url,
            "allowed_webhooks": [],
            "contact_email": "credly-admin@academy.example.com",
            "technical_contact_email": "it@academy.example.com",
            "vanity_slug": "sandbox-academy",
            "vanity_url": f"{WEB_BASE}/org/sandbox-academy",
            "verified": True,
            "workforce_enabled": False,
            "photo": {"id": self.organization_id, "url": f"{IMAGE_BASE}/org/{self.organization_id}.png"},
            "photo_url": f"{IMAGE_BASE}/org/{self.organization_id}.png",
            "created_at": iso(_TEMPLATE_EPOCH - timedelta(days=30)),
            "updated_at": iso(_TEMPLATE_EPOCH - timedelta(days=30)),
        }

    def template_json(self, t: Template) -> dict[str, Any]:
        slug = _slugify(t.name)
        image = f"{IMAGE_BASE}/size/340x340/images/{t.id}/image.png"
        return {
            "id": t.id,
            "name": t.name,
            "description": t.description,
            "state": t.state,
            "allow_duplicate_badges": t.allow_duplicate_badges,
            "public": t.public,
            "visibility": "public" if t.public else "private",
            "badges_count": self.badges_count(t.id),
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
            "owner": self.owner_json(),
            "alignments": [],
            "recommendations": [],
            "required_badge_templates": [],
            "badge_template_activities": [],
            "skills": [],
            "reporting_tags": [],
            "recommending_templates": [],
            "criterion_for": [],
        }

    def badge_json(self, b: Badge) -> dict[str, Any]:
        template = self.templates.get(b.template_id)
        owner = self.owner_json()
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
                "summary": f"issued by {self.organization_name}",
                "entities": [{"label": "Issued by", "primary": True, "entity": entity}],
            },
            "printing_enabled": False,
            "print_method": None,
            "badge_template": self.template_json(template) if template else {"id": b.template_id},
            "issued_to": _full_name(b),
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

    def event_json(self, e: Event) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": e.id,
            "event_type": e.event_type,
            "organization_id": self.organization_id,
            "occurred_at": iso(e.occurred_at),
        }
        if e.badge is not None:
            out["badge"] = self.badge_json(e.badge)
        if e.template is not None:
            out["badge_template"] = self.template_json(e.template)
        return out


# --------------------------------------------------------------------------------------------


def _full_name(b: Badge) -> str:
    return " ".join(p for p in (b.first_name, b.middle_name, b.last_name) if p)


def _slugify(text: str) -> str:
    out = "".join(c.lower() if c.isalnum() else "-" for c in text)
    return "-".join(p for p in out.split("-") if p)


def _freeze(filters: Mapping[str, list[str]]) -> tuple:
    return tuple(sorted((k, tuple(v)) for k, v in filters.items()))


def _optional_int(value: Any) -> int | None:
    if value in (None, "", False):
        return None
    return int(value)


def _evidence(item: Any, new_id: Callable[[], str]) -> Any:
    """Echo evidence as sent, adding an ``id``; ``IdEvidence`` ``"Name=value"`` reads back as
    ``name`` + ``id`` (credly.md §3.8)."""
    if not isinstance(item, Mapping):
        return item
    out = dict(item)
    if out.get("type") == "IdEvidence" and isinstance(out.get("id"), str) and "=" in out["id"]:
        name, _, value = out["id"].partition("=")
        out["name"], out["id"] = name, value
    out.setdefault("id", new_id())
    return out


__all__ = [
    "ALREADY_HAS",
    "Badge",
    "CredlyError",
    "CredlyState",
    "DEFAULT_TOKEN",
    "Event",
    "INVALID_TEMPLATE",
    "Template",
    "iso",
    "parse_filter",
    "parse_sort",
]
