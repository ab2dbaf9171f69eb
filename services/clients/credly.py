"""The Credly Web Service API client (api/credly.md).

Design notes: docs/design/clients.md
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from dateutil import parser as dateparser

from services.clients.http import (
    ApiSession,
    ConnectionReport,
    HttpPolicy,
    RateLimiter,
    Recovered,
    json_body,
    service_message,
)
from services.core.errors import (
    ApiError,
    AuthenticationError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    ServerError,
    UnexpectedResponseError,
    ValidationError,
)
from services.core.secrets import Secret

log = logging.getLogger("services.clients.credly")

SERVICE = "Credly"
BATCH_SIZE = 50  # badges per /badges/batch call (what Credly's batch integrations send)
ISSUED_STATES = ("pending", "accepted")  # F3c, F5: both count as "holds the badge"

R_TEMPLATES = "/organizations/{org}/badge_templates"
R_TEMPLATE = "/organizations/{org}/badge_templates/{id}"
R_BADGES = "/organizations/{org}/badges"
R_BADGES_BATCH = "/organizations/{org}/badges/batch"
R_BADGE = "/organizations/{org}/badges/{id}"
R_REVOKE = "/organizations/{org}/badges/{id}/revoke"
R_REPLACE = "/organizations/{org}/badges/{id}/replace"
R_EVENTS = "/organizations/{org}/events"
R_EVENT = "/organizations/{org}/events/{id}"

_DUPLICATE_MARKERS = ("already has this badge", "already holds", "duplicate")


@dataclass(frozen=True)
class Issued:
    """The badge was issued (Credly's badge dict). `recovered`: the issue call failed ambiguously
    and the badge was found to exist, so the call was not sent again."""

    badge: dict
    recovered: bool = False


@dataclass(frozen=True)
class AlreadyHolds:
    """Credly refused the badge as a duplicate (422 "… already has this badge")."""

    message: str


IssueResult = Issued | AlreadyHolds


def credly_filter(**filters: Any) -> str | None:
    """Credly's filter syntax: `key::value` joined with `|`; list values comma-separated.

    None / empty values are left out; booleans become true/false. The characters `|` and `::`
    cannot be escaped in this syntax, so a value containing them is refused.
    """
    parts = []
    for key, value in filters.items():
        if value is None or value == "" or (isinstance(value, (list, tuple, set)) and not value):
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (list, tuple, set)):
            text = ",".join(str(v) for v in value)
        else:
            text = str(value)
        if "|" in text or "::" in text:
            raise ValueError(f"Credly filter value for {key!r} cannot contain '|' or '::': {text!r}")
        parts.append(f"{key}::{text}")
    return "|".join(parts) or None


def is_duplicate_message(message: str) -> bool:
    low = message.lower()
    return any(m in low for m in _DUPLICATE_MARKERS)


class CredlyClient:
    """Async Credly client; see the module docstring. Use as `async with CredlyClient(...)`."""

    service = SERVICE

    def __init__(
        self,
        base_url: str,
        organization_id: str,
        token: str | Secret,
        *,
        policy: HttpPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.organization_id = organization_id
        self._token = Secret(token)
        # §1.3: the token is the user name, the password is empty.
        encoded = base64.b64encode(f"{self._token.reveal()}:".encode()).decode()
        self._basic = Secret(f"Basic {encoded}")
        self._basic_b64 = Secret(encoded)
        self._session = ApiSession(
            SERVICE, self.base_url, policy=policy, transport=transport, limiter=limiter,
            secrets=lambda: (self._token, self._basic_b64),
            auth_headers=self._auth_headers,
            headers={"Content-Type": "application/json"},
        )
        self.policy = self._session.policy
        self.calls = self._session.calls
        self.service_clock = self._session.clock
        self.limiter = self._session.limiter
        self.concurrency = self._session.concurrency

    def __repr__(self) -> str:
        return f"CredlyClient(base_url={self.base_url!r}, organization_id={self.organization_id!r})"

    async def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": self._basic.reveal()}

    async def aclose(self) -> None:
        await self._session.aclose()

    async def __aenter__(self) -> CredlyClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---------------------------------------------------------------------------------------
    # plumbing

    def _path(self, **kw: Any) -> dict[str, Any]:
        return {"org": self.organization_id, **kw}

    async def _get_data(self, route: str, **path: Any) -> Any:
        response = await self._session.request("GET", route, path=self._path(**path))
        return self._data(response, f"GET {route}")

    def _data(self, response: httpx.Response, call: str) -> Any:
        body = json_body(response, SERVICE, call)
        if not isinstance(body, dict) or "data" not in body:
            raise UnexpectedResponseError(SERVICE, call, response.status_code,
                                          "the response has no 'data' member")
        return body["data"]

    async def _pages(self, route: str, params: Mapping[str, Any] | None = None,
                     metadata: dict[str, Any] | None = None) -> AsyncIterator[dict]:
        """Every item of every page: the first page from `route`, then `next_page_url` verbatim.
        `metadata`, when given, receives the first page's list metadata (§1.4: `total_count` of
        the whole listing, `total_pages`, `per`) before the first item is yielded."""
        call = f"GET {route}"
        response = await self._session.request(
            "GET", route, path=self._path(), params={k: v for k, v in (params or {}).items() if v},
        )
        seen: set[str] = set()
        while True:
            body = json_body(response, SERVICE, call)
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, list):
                raise UnexpectedResponseError(SERVICE, call, response.status_code,
                                              "expected a list in 'data'")
            if metadata is not None and not seen and isinstance(body.get("metadata"), dict):
                metadata.update(body["metadata"])  # the first page (`seen` fills from the second)
            for item in data:
                yield item
            metadata = body.get("metadata") or {}
            next_url = metadata.get("next_page_url") if isinstance(metadata, dict) else None
            if not next_url:
                return
            self._check_next_url(call, next_url)
            if next_url in seen:
                raise UnexpectedResponseError(SERVICE, call, response.status_code,
                                              f"next_page_url repeats itself ({next_url})")
            seen.add(next_url)
            response = await self._session.request("GET", route, url=next_url)

    def _check_next_url(self, call: str, next_url: str) -> None:
        base = httpx.URL(self.base_url)
        nxt = httpx.URL(next_url)
        same = (nxt.scheme, nxt.host, nxt.port) == (base.scheme, base.host, base.port)
        if not same:
            raise UnexpectedResponseError(
                SERVICE, call, None,
                f"next_page_url points to another server ({nxt.scheme}://{nxt.host}); "
                f"not following it with the token (configured base URL {self.base_url})",
            )

    # ---------------------------------------------------------------------------------------
    # templates (F1)

    async def iter_templates(self, states: Iterable[str] | None = None, *,
                             sort: str | None = None) -> AsyncIterator[dict]:
        """Every badge template of the organization (all pages), optionally only these states
        (active / archived / draft)."""
        params = {"filter": credly_filter(state=list(states) if states else None), "sort": sort}
        async for item in self._pages(R_TEMPLATES, params):
            yield item

    async def get_template(self, template_id: str) -> dict:
        return await self._get_data(R_TEMPLATE, id=template_id)

    # ---------------------------------------------------------------------------------------
    # issued badges

    async def iter_badges(
        self,
        *,
        badge_template_id: str | None = None,
        recipient_email: str | None = None,
        states: Iterable[str] | None = None,
        issuer_earner_id: str | None = None,
        query: str | None = None,
        sort: str | None = None,
        recipient_email_all: str | None = None,
        updated_at_min: dt.datetime | str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> AsyncIterator[dict]:
        """Issued badges matching the filters (all pages). `recipient_email_all` matches every
        e-mail address of the Credly user owning that address. `metadata`: filled with the
        first page's list metadata (`total_count`: how many badges match) as soon as it arrives.

        `updated_at_min`: only badges updated at or after it. [INF] Credly documents
        `updated_at_min` (`YYYY-MM-DD`, inclusive) on the template list; the badge list taking it
        is inferred by analogy. An aware datetime is sent as an ISO instant
        (`2026-01-01T10:00:00Z`): an API comparing whole days returns a superset, and callers
        filter by `updated_at` themselves."""
        if isinstance(updated_at_min, dt.datetime):
            moment = updated_at_min if updated_at_min.tzinfo else updated_at_min.replace(tzinfo=dt.UTC)
            updated_at_min = moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        params = {
            "filter": credly_filter(
                badge_template_id=badge_template_id,
                recipient_email=recipient_email,
                recipient_email_all=recipient_email_all,
                state=list(states) if states else None,
                issuer_earner_id=issuer_earner_id,
                query=query,
                updated_at_min=updated_at_min,
            ),
            "sort": sort,
        }
        async for item in self._pages(R_BADGES, params, metadata):
            yield item

    async def find_issued_badge(self, fields: Mapping[str, Any]) -> dict | None:
        """A pending or accepted badge of `fields`' template and recipient e-mail (F3c), or None.

        When several exist, the one matching `issuer_earner_id` and `issued_at` is preferred.
        """
        template_id = fields.get("badge_template_id")
        email = (fields.get("recipient_email") or "").strip()
        if not template_id or not email:
            return None
        candidates = []
        async for badge in self.iter_badges(badge_template_id=str(template_id),
                                            recipient_email=email, states=ISSUED_STATES):
            if (badge.get("recipient_email") or "").lower() != email.lower():
                continue
            if badge_template_of(badge) not in (None, str(template_id)):
                continue
            if badge.get("state") not in ISSUED_STATES:
                continue
            candidates.append(badge)
        if not candidates:
            return None

        def score(badge: dict) -> int:
            s = 0
            if fields.get("issuer_earner_id") is not None and \
                    str(badge.get("issuer_earner_id")) == str(fields.get("issuer_earner_id")):
                s += 2
            if _same_instant(badge.get("issued_at"), fields.get("issued_at")):
                s += 1
            return s

        return max(candidates, key=score)

    async def issue_badge(self, fields: Mapping[str, Any]) -> IssueResult:
        """Issue one badge. Returns `Issued(badge)` or `AlreadyHolds(message)` (422 duplicate);
        raises `ApiError` otherwise. Never issues twice (see the module docstring)."""
        call = f"POST {R_BADGES}"
        payload = dict(fields)

        async def recover() -> dict | None:
            return await self.find_issued_badge(payload)

        result = await self._session.request(
            "POST", R_BADGES, path=self._path(), json=payload, idempotent=False,
            recover=recover, accept={422},
        )
        if isinstance(result, Recovered):
            return Issued(result.value, recovered=True)
        if result.status_code == 422:
            message = self._session.redact(service_message(result))
            if is_duplicate_message(message):
                return AlreadyHolds(message)
            raise self._session.error(ValidationError, call, 422, message)
        return Issued(self._data(result, call))

    async def issue_badges_batch(self, items: list[Mapping[str, Any]]) -> list[IssueResult | ApiError]:
        """Issue many badges through `/badges/batch`, 50 per call. The result list is aligned
        with `items`: `Issued`, `AlreadyHolds`, or the `ApiError` of that item (not raised).

        A 422 names the failing item (`error_index`): it gets its result and the rest is sent
        again. After an ambiguous failure each item is looked up and only the missing ones are
        sent again.
        """
        results: list[IssueResult | ApiError | None] = [None] * len(items)
        for start in range(0, len(items), BATCH_SIZE):
            chunk = [(start + i, dict(f)) for i, f in enumerate(items[start:start + BATCH_SIZE])]
            await self._issue_chunk(chunk, results)
        return [r if r is not None else UnexpectedResponseError(
            SERVICE, f"POST {R_BADGES_BATCH}", None, "no result for this item") for r in results]

    async def _issue_chunk(self, pending: list[tuple[int, dict]],
                           results: list[IssueResult | ApiError | None]) -> None:
        call = f"POST {R_BADGES_BATCH}"
        failures = 0
        while pending:
            try:
                response = await self._session.request(
                    "POST", R_BADGES_BATCH, path=self._path(),
                    json={"badges": [f for _, f in pending]}, idempotent=False, accept={422},
                )
            except (NetworkError, ServerError) as exc:
                # Possibly (partly) applied: look every item up, send only what is missing.
                failures += 1
                still = []
                for index, fields in pending:
                    found = await self.find_issued_badge(fields)
                    if found is not None:
                        results[index] = Issued(found, recovered=True)
                    else:
                        still.append((index, fields))
                pending = still
                if pending and failures > self.policy.max_retries:
                    for index, _ in pending:
                        results[index] = exc
                    return
                if pending:
                    await self.policy.pause(self.policy.scaled(self.policy.backoff_delay(failures)))
                continue
            assert isinstance(response, httpx.Response)
            if response.status_code == 422:
                message = self._session.redact(service_message(response))
                failed_index = _error_index(response)
                if failed_index is None or not 0 <= failed_index < len(pending):
                    # Cannot tell which item failed: issue the rest one by one.
                    for i, fields in pending:
                        try:
                            results[i] = await self.issue_badge(fields)
                        except ApiError as exc:
                            results[i] = exc
                    return
                i, _ = pending.pop(failed_index)
                results[i] = AlreadyHolds(message) if is_duplicate_message(message) else \
                    self._session.error(ValidationError, call, 422, message)
                continue
            data = self._data(response, call)
            if isinstance(data, dict):
                data = data.get("badges", data.get("items"))
            if not isinstance(data, list) or len(data) != len(pending):
                raise UnexpectedResponseError(SERVICE, call, response.status_code,
                                              "the batch response does not list one badge per item")
            for (i, _), badge in zip(pending, data, strict=True):
                results[i] = Issued(badge)
            return

    async def revoke_badge(self, badge_id: str, reason: str, *,
                           suppress_notification: bool = False) -> dict:
        """Revoke a badge (F4, F5); returns the revoked badge."""
        response = await self._session.request(
            "PUT", R_REVOKE, path=self._path(id=badge_id),
            json={"reason": reason, "suppress_revoke_notification_email": bool(suppress_notification)},
        )
        return self._data(response, f"PUT {R_REVOKE}")

    async def replace_badge(self, badge_id: str, fields: Mapping[str, Any]) -> dict:
        """Replace a badge by a new one (F4 "updated"); returns the NEW badge. After an
        ambiguous failure, a badge whose `replaces_badge_id` is `badge_id` counts as done."""
        payload = dict(fields)

        async def recover() -> dict | None:
            async for badge in self.iter_badges(
                    badge_template_id=payload.get("badge_template_id"),
                    recipient_email=payload.get("recipient_email")):
                if str(badge.get("replaces_badge_id") or "") == str(badge_id):
                    return badge
            return None

        result = await self._session.request(
            "POST", R_REPLACE, path=self._path(id=badge_id), json=payload, idempotent=False,
            recover=recover,
        )
        if isinstance(result, Recovered):
            return result.value
        return self._data(result, f"POST {R_REPLACE}")

    async def delete_badge(self, badge_id: str) -> None:
        """Delete a badge (GDPR-style removal; revoking keeps a record)."""
        await self._session.request("DELETE", R_BADGE, path=self._path(id=badge_id))

    # ---------------------------------------------------------------------------------------
    # events (F5, webhooks)

    async def get_event(self, event_id: str) -> dict:
        """The event's `data` (`id`, `event_type`, `occurred_at`, and `badge` or `badge_template`)."""
        return await self._get_data(R_EVENT, id=event_id)

    async def iter_events(self) -> AsyncIterator[dict]:
        async for item in self._pages(R_EVENTS):
            yield item

    # ---------------------------------------------------------------------------------------
    async def test_connection(self) -> ConnectionReport:
        """One cheap call (the first page of badge templates) that says what is wrong, if anything."""
        if not self.base_url.startswith(("http://", "https://")):
            return ConnectionReport(False, f"The Credly base URL {self.base_url!r} must start with "
                                           "https:// (e.g. https://api.credly.com/v1).")
        if not self.organization_id:
            return ConnectionReport(False, "No Credly organization id is configured.")
        if not self._token:
            return ConnectionReport(False, "No Credly authorization token is set (keyring entry "
                                           "credly_token or the CREDLY_TOKEN environment variable).")
        call = f"GET {R_TEMPLATES}"
        try:
            response = await self._session.request("GET", R_TEMPLATES, path=self._path(),
                                                   max_retries=1)
            body = json_body(response, SERVICE, call)
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise UnexpectedResponseError(SERVICE, call, response.status_code,
                                              "the answer is not a Credly list")
        except AuthenticationError as exc:
            return ConnectionReport(False, f"Credly rejected the authorization token (HTTP 401: "
                                           f"{exc.message}). Check the token; Credly tokens "
                                           "expire after 180 days.")
        except PermissionDeniedError as exc:
            return ConnectionReport(False, f"The token may not read the badge templates of "
                                           f"organization {self.organization_id} (HTTP 403: "
                                           f"{exc.message}). Use a token with read and write "
                                           "permission.")
        except NotFoundError as exc:
            return ConnectionReport(False, f"Credly knows no organization {self.organization_id} "
                                           f"at {self.base_url} (HTTP 404: {exc.message}). Check "
                                           "the organization id and that the base URL ends in /v1.")
        except NetworkError as exc:
            return ConnectionReport(False, f"Cannot reach Credly at {self.base_url}: {exc.message}. "
                                           "Check the base URL and the network.")
        except UnexpectedResponseError as exc:
            return ConnectionReport(False, f"{self.base_url} does not answer like the Credly API: "
                                           f"{exc.message}.")
        except ApiError as exc:
            return ConnectionReport(False, str(exc))
        meta = body.get("metadata") or {}
        total = meta.get("total_count", len(body["data"])) if isinstance(meta, dict) else len(body["data"])
        return ConnectionReport(True, f"Connected to Credly organization {self.organization_id}: "
                                      f"{total} badge template(s) visible.")


# -------------------------------------------------------------------------------------------
# helpers


def badge_template_of(badge: Mapping[str, Any]) -> str | None:
    """The template id of an issued badge (nested `badge_template.id`, or a flat id)."""
    tpl = badge.get("badge_template")
    if isinstance(tpl, dict) and tpl.get("id") is not None:
        return str(tpl["id"])
    if badge.get("badge_template_id") is not None:
        return str(badge["badge_template_id"])
    return None


def _error_index(response: httpx.Response) -> int | None:
    try:
        body = response.json()
    except ValueError:
        return None
    data = body.get("data") if isinstance(body, dict) else None
    value = data.get("error_index") if isinstance(data, dict) else None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _parse_instant(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = dateparser.parse(value)
    except (ValueError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _same_instant(a: Any, b: Any) -> bool:
    pa, pb = _parse_instant(a), _parse_instant(b)
    return pa is not None and pb is not None and abs((pa - pb).total_seconds()) < 1.0
