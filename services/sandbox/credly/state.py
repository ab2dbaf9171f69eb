"""The world behind the Credly sandbox: one organisation's badge templates, issued badges and
events, with the rules of credly.md §2–§4 that a client can observe. [I] decisions: duplicates are
the same template and recipient e-mail (any case) or non-blank ``issuer_earner_id`` as a pending
or accepted badge (§3.7); only active templates issue; events keep a snapshot of what changed;
revoking needs a reason; a replacement keeps the old state unless the e-mail changes (§3.6).
Indexes and list queries: index.py; records and parsing: records.py; JSON: wire.py.
"""

from __future__ import annotations

import copy
import random
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from services.sandbox.credly.index import CredlyIndex
from services.sandbox.credly.records import (
    ALREADY_HAS,
    BATCH_LIMIT,
    DEFAULT_ORG_NAME,
    DEFAULT_TOKEN,
    INVALID_TEMPLATE,
    NOT_FOUND,
    REQUIRED_ISSUE_FIELDS,
    TEMPLATE_EPOCH,
    TEMPLATE_STATES,
    Badge,
    CredlyError,
    Event,
    Template,
    blank,
    evidence_item,
    iso,
    optional_int,
    parse_time,
    truthy,
)


class CredlyState(CredlyIndex):
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
        self.listeners: list[Callable[[Event], None]] = []
        self._source: Callable[[], Any] | None = None
        super().__init__()

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
            created = TEMPLATE_EPOCH + timedelta(hours=i)
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

    # -- templates ----------------------------------------------------------------------------

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
        if blank(name):
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
                default_expires_in_days=optional_int(default_expires_in_days),
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
            if "name" in changes and blank(changes["name"]):
                raise CredlyError(422, "Name can't be blank")
            if "state" in changes and changes["state"] not in TEMPLATE_STATES:
                raise CredlyError(422, f"State must be one of {', '.join(TEMPLATE_STATES)}")
            now = self.now()
            for name, value in changes.items():
                if name in ("allow_duplicate_badges", "public"):
                    value = truthy(value)
                elif name == "default_expires_in_days":
                    value = optional_int(value)
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
        template = self.templates.get(str(template_id)) if not blank(template_id) else None
        if template is None or template.state != "active":
            raise CredlyError(422, INVALID_TEMPLATE)
        for name, label in REQUIRED_ISSUE_FIELDS:
            if blank(f.get(name)):
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
        earner = None if blank(earner) else str(earner)
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
            middle_name=None if blank(f.get("issued_to_middle_name")) else str(f["issued_to_middle_name"]),
            issued_at=issued_at,
            expires_at=expires_at,
            state="pending",
            issuer_earner_id=earner,
            created_at=now,
            updated_at=now,
            state_updated_at=now,
            locale=str(f.get("locale") or "en"),
            suppress_email=truthy(f.get("suppress_badge_notification_email", False)),
            evidence=[evidence_item(e, self._new_id) for e in evidence] if evidence else [],
            country_name=None if blank(f.get("country_name")) else str(f["country_name"]),
            state_or_province=None if blank(f.get("state_or_province")) else str(f["state_or_province"]),
            issuer_earner_group=group if isinstance(group, dict) else None,
        )
        to_replace = None
        behaviour = str(f.get("duplicate_behavior") or "").lower()
        if check_duplicates and behaviour != "allow" and not template.allow_duplicate_badges:
            held = self.holders(template.id, email, earner, exclude=exclude)
            held += [
                p
                for p in pending
                if p.template_id == template.id
                and (p.email_key == email.lower() or (earner and p.issuer_earner_id == earner))
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
            if blank(reason):
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
                if blank(fields.get(name)):
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


__all__ = ["CredlyState", "DEFAULT_TOKEN"]
