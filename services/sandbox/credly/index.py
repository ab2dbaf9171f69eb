"""The indexes and list queries of the Credly sandbox's state (credly.md §2.2, §3.4, §3.7).

Records are indexed by id, template, recipient e-mail and ``issuer_earner_id``; a list query
picks the smallest index that applies, filters, sorts, and keeps the result in a small cache keyed
by the query and the state's version, so paging a big result never re-sorts the world per page.
Unknown filter and sort keys are ignored [I].
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping

from services.sandbox.credly.records import (
    HOLDING_STATES,
    NOT_FOUND,
    Badge,
    CredlyError,
    Event,
    Template,
    freeze_filters,
    full_name,
    parse_time,
    sort_items,
    truthy,
)


class CredlyIndex:
    """The organisation's records and their indexes; ``CredlyState`` adds the changes."""

    def __init__(self) -> None:
        # The date-range filters of lists (``created_at_min`` … ``updated_at_max``): documented for
        # templates, inferred for badges [INF]. Switched off, they are accepted and not applied,
        # as by an organisation whose API does not have them.
        self.honour_date_filters = True
        self._lock = threading.RLock()
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

    def get_template(self, template_id: str) -> Template:
        template = self.templates.get(template_id)
        if template is None:
            raise CredlyError(404, NOT_FOUND)
        return template

    def get_badge(self, badge_id: str) -> Badge:
        badge = self.badges.get(badge_id)
        if badge is None:
            raise CredlyError(404, NOT_FOUND)
        return badge

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

    # -- list queries -------------------------------------------------------------------------

    def query_templates(self, filters: Mapping[str, list[str]], sort: list[tuple[str, bool]]) -> list[Template]:
        """credly.md §2.2 filters ``state``, ``name`` (partial, or strict in double quotes),
        ``query`` (name or description), ``public``; sorts ``name``, ``created_at``,
        ``updated_at``, ``badges_count``, ``state``."""
        key = ("templates", freeze_filters(filters), tuple(sort), self.honour_date_filters)
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
            items = sort_items(
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

    def query_badges(self, filters: Mapping[str, list[str]], sort: list[tuple[str, bool]]) -> list[Badge]:
        """Filters ``recipient_email`` / ``recipient_email_all`` (exact, any case),
        ``badge_template_id``, ``issuer_earner_id``, ``state`` (comma lists) and ``query``
        (partial, name or e-mail); sorts ``issued_at``, ``created_at``, ``updated_at``,
        ``state_updated_at``, ``expires_at``, ``recipient_email``, ``state`` (credly.md §3.4)."""
        key = ("badges", freeze_filters(filters), tuple(sort), self.honour_date_filters)
        with self._lock:
            cached = self._cache.get(key)
            if cached and cached[0] == self.version:
                self._cache.move_to_end(key)
                return cached[1]
            candidates: dict[str, None] | None = None
            sent_emails = filters.get("recipient_email", []) + filters.get("recipient_email_all", [])
            indexed = [
                (self._by_email, [e.lower() for e in sent_emails]),
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
                items = [b for b in items if part in b.email_key or part in full_name(b).lower()]
            items = self._date_range(items, filters)
            items = sort_items(
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


__all__ = ["CredlyIndex"]
