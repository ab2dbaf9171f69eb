"""The Docebo Learn API client (api/docebo.md).

Design notes: docs/design/clients.md
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any

import httpx

from services.clients.docebo_fields import (  # noqa: F401  (field_* re-exported for the flows)
    _option_id,
    _same_time,
    field_name,
    field_options,
    option_label,
)
from services.clients.http import (
    ApiSession,
    ConnectionReport,
    HttpPolicy,
    RateLimiter,
    Recovered,
    json_body,
    php_params,
    service_message,
)
from services.clients.routes import Route, route
from services.core.errors import (
    ApiError,
    AuthenticationError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    UnexpectedResponseError,
)
from services.core.secrets import Secret

log = logging.getLogger("services.clients.docebo")

SERVICE = "Docebo"
PAGE_SIZE = 200  # the largest page every client of the real API uses (§1.3)
ID_CHUNK = 50  # ids per array parameter per call
LP_EXTRA_FIELDS = ("enrollment_status", "enrollment_completion_date",
                   "enrollment_completion_percentage")


class DoceboClient:
    """Async Docebo client; see the module docstring. Use as `async with DoceboClient(...)`."""

    service = SERVICE

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str | Secret,
        *,
        grant: str = "client_credentials",
        username: str | None = None,
        password: str | Secret | None = None,
        policy: HttpPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        limiter: RateLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
        page_size: int = PAGE_SIZE,
        id_chunk: int = ID_CHUNK,
    ) -> None:
        if grant not in ("client_credentials", "password"):
            raise ValueError(f"Docebo grant must be client_credentials or password, got {grant!r}")
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self.grant = grant
        self.username = username or ""
        self._client_secret = Secret(client_secret)
        self._password = Secret(password)
        self._clock = clock
        self.page_size = page_size
        self.id_chunk = id_chunk
        self._token: Secret | None = None
        self._token_expires_at = 0.0
        self._old_tokens: list[Secret] = []
        self._token_lock = asyncio.Lock()
        self.token_fetches = 0  # how many times a token was obtained (tests, benchmarks)
        self._session = ApiSession(
            SERVICE, self.base_url, policy=policy, transport=transport, limiter=limiter,
            secrets=self._secrets, auth_headers=self._auth_headers,
            on_unauthorized=self._on_unauthorized,
        )
        self.policy = self._session.policy
        self.calls = self._session.calls
        self.service_clock = self._session.clock
        self.limiter = self._session.limiter
        self.concurrency = self._session.concurrency

    def __repr__(self) -> str:
        return f"DoceboClient(base_url={self.base_url!r}, client_id={self.client_id!r}, grant={self.grant!r})"

    def _secrets(self) -> list[Secret]:
        out = [self._client_secret, self._password, *self._old_tokens]
        if self._token is not None:
            out.append(self._token)
        return out

    async def aclose(self) -> None:
        await self._session.aclose()

    async def __aenter__(self) -> DoceboClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---------------------------------------------------------------------------------------
    # OAuth2

    async def _auth_headers(self) -> dict[str, str]:
        token = await self._ensure_token()
        return {"Authorization": f"Bearer {token.reveal()}"}

    def _token_valid(self) -> bool:
        return self._token is not None and self._clock() < self._token_expires_at

    async def _ensure_token(self) -> Secret:
        if self._token_valid():
            assert self._token is not None
            return self._token
        async with self._token_lock:
            if not self._token_valid():
                await self._fetch_token()
            assert self._token is not None
            return self._token

    async def _on_unauthorized(self, headers_used: Mapping[str, str]) -> bool:
        """A call got 401: fetch a new token unless another call already did, then retry once."""
        used = headers_used.get("Authorization", "")
        async with self._token_lock:
            current = f"Bearer {self._token.reveal()}" if self._token is not None else ""
            if current == used or not current:
                log.info("Docebo: access token refused (401); obtaining a new one")
                self._token = None
                await self._fetch_token()
        return True

    async def _fetch_token(self, *, max_retries: int | None = None) -> None:
        r = route("token")
        form = {"client_id": self.client_id, "client_secret": self._client_secret.reveal(),
                "grant_type": self.grant, "scope": "api"}
        if self.grant == "password":
            form["username"] = self.username
            form["password"] = self._password.reveal()
        response = await self._session.request(
            r.method, r.path, data=form, auth=False, accept={400, 401, 403},
            bypass_in_flight=True, max_retries=max_retries, idempotent=True,
        )
        assert isinstance(response, httpx.Response)
        if response.status_code in (400, 401, 403):
            message = service_message(response)
            raise self._session.error(
                AuthenticationError, r.call, response.status_code,
                f"{message} (check the client id and secret"
                + (", user name and password" if self.grant == "password" else "")
                + f", and that the OAuth2 app allows the {self.grant} grant)")
        body = json_body(response, SERVICE, r.call)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise UnexpectedResponseError(SERVICE, r.call, response.status_code,
                                          "the token response has no access_token")
        try:
            lifetime = float(body.get("expires_in") or 3600)
        except (TypeError, ValueError):
            lifetime = 3600.0
        if self._token is not None:
            self._old_tokens = (self._old_tokens + [self._token])[-5:]
        self._token = Secret(token)
        # Refresh ahead of expiry: a tenth of the lifetime, at most five minutes.
        self._token_expires_at = self._clock() + lifetime - min(300.0, lifetime * 0.1)
        self.token_fetches += 1
        log.info("Docebo: obtained an access token (%s grant, valid %d s)", self.grant, int(lifetime))

    # ---------------------------------------------------------------------------------------
    # plumbing

    async def _call(self, r: Route, *, path: Mapping[str, Any] | None = None,
                    params: Mapping[str, Any] | None = None, json: Any = None,
                    recover=None, idempotent: bool | None = None) -> Any:
        """One call; returns `data` of the envelope (None for an empty body), or the looked-up
        object when `recover` found it after an ambiguous failure."""
        result = await self._session.request(
            r.method, r.path, path=path, params=php_params(params) if params else None,
            json=json, recover=recover, idempotent=idempotent,
        )
        if isinstance(result, Recovered):
            return result.value
        body = json_body(result, SERVICE, r.call)
        if isinstance(body, dict) and "data" in body:
            return body["data"]
        return body

    async def _pages(self, r: Route, *, path: Mapping[str, Any] | None = None,
                     params: Mapping[str, Any] | None = None) -> AsyncIterator[dict]:
        """Every item of every page (`page`, `page_size`) until `has_more_data` is false."""
        page = 1
        while True:
            query = php_params(params) + [("page", str(page)), ("page_size", str(self.page_size))]
            response = await self._session.request(r.method, r.path, path=path, params=query)
            assert isinstance(response, httpx.Response)
            body = json_body(response, SERVICE, r.call)
            data = body.get("data") if isinstance(body, dict) else None
            items = data.get("items") if isinstance(data, dict) else None
            if not isinstance(data, dict) or not isinstance(items, list):
                raise UnexpectedResponseError(SERVICE, r.call, response.status_code,
                                              "expected data.items in the list response")
            for item in items:
                yield item
            more = data.get("has_more_data")
            if more is None:  # older envelopes: fall back on the page count
                total_pages = data.get("total_page_count")
                more = page < int(total_pages) if total_pages else False
            if not more:
                return
            if not items:
                log.warning("Docebo %s: has_more_data with an empty page %d; stopping", r.call, page)
                return
            page += 1

    def _chunks(self, values: Iterable[Any] | None) -> list[list[Any] | None]:
        """Chunks of ids for one array parameter; [None] means "no filter"."""
        if values is None:
            return [None]
        values = list(dict.fromkeys(values))  # unique, in order
        if not values:
            return []
        return [values[i:i + self.id_chunk] for i in range(0, len(values), self.id_chunk)]

    async def _chunked_pages(self, r: Route, filters: Mapping[str, Iterable[Any] | None],
                             extra: Mapping[str, Any] | None = None) -> AsyncIterator[dict]:
        """Pages of `r` for each combination of id chunks (an empty id list yields nothing)."""
        names = list(filters)
        for combo in itertools.product(*(self._chunks(filters[n]) for n in names)):
            params: dict[str, Any] = dict(extra or {})
            for name, chunk in zip(names, combo, strict=True):
                if chunk is not None:
                    params[name] = chunk
            async for item in self._pages(r, params=params):
                yield item

    # ---------------------------------------------------------------------------------------
    # users

    async def find_user_by_email(self, email: str) -> dict | None:
        """The user with exactly this e-mail (case-insensitive), or None. Docebo's search is a
        text search over names and e-mail, so results are filtered to the exact address."""
        wanted = (email or "").strip().lower()
        if not wanted:
            return None
        async for user in self._pages(route("users"),
                                      params={"search_text": wanted, "match_type": "full"}):
            if str(user.get("email") or "").strip().lower() == wanted:
                return user
        return None

    async def get_user(self, user_id: int | str) -> dict:
        """`data` of the user detail (`user_data` plus `additional_fields`)."""
        return await self._call(route("user"), path={"id": user_id})

    async def iter_users(self) -> AsyncIterator[dict]:
        async for item in self._pages(route("users")):
            yield item

    # ---------------------------------------------------------------------------------------
    # courses and the course additional field (F2, F3a)

    async def iter_courses(self, *, updated_from: dt.datetime | str | None = None) -> AsyncIterator[dict]:
        """Every course; with `updated_from`, only those changed since ([I] filter, see
        `_changed_since`)."""
        r, params = self._changed_since("courses", "courses_changed", updated_from)
        async for item in self._pages(r, params=params):
            yield item

    async def get_course(self, course_id: int | str) -> dict:
        return await self._call(route("course"), path={"id": course_id})

    @staticmethod
    def _changed_since(plain: str, filtered: str, value: dt.datetime | str | None
                       ) -> tuple[Route, dict[str, Any]]:
        """The route and parameters of a list read, with the changed-since filter when `value`
        is given: `TO_VERIFY[filtered]` names the parameter ([I]); the value is Docebo's
        `YYYY-MM-DD HH:MM:SS` in UTC (an aware datetime is converted, a string sent as is)."""
        if value is None:
            return route(plain), {}
        r = route(filtered)
        if isinstance(value, dt.datetime):
            moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
            value = moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        return r, {r.param: value}

    @staticmethod
    def course_field_value(course: Mapping[str, Any], field_id: int | str) -> str | None:
        """A course's value of additional field `field_id` (for a dropdown: the option id), as a
        string, from the flat `field_<id>` key or the `additional_fields` list; None if unset."""
        value = course.get(f"field_{field_id}")
        if value in (None, "", [], {}):
            value = None
            for f in course.get("additional_fields") or []:
                if isinstance(f, dict) and str(f.get("id")) == str(field_id):
                    value = f.get("value")
                    break
        if isinstance(value, dict):
            value = value.get("id", value.get("value"))
        if value in (None, "", [], {}):
            return None
        return str(value)

    async def list_course_fields(self) -> list[dict]:
        return [f async for f in self._pages(route("course_fields"))]

    async def get_course_field(self, field_id: int | str) -> dict:
        return await self._call(route("course_field"), path={"id": field_id})

    async def find_course_field(self, name: str) -> dict | None:
        """The course additional field called `name` (case-insensitive), or None."""
        wanted = name.strip().lower()
        for f in await self.list_course_fields():
            if (field_name(f) or "").strip().lower() == wanted:
                return f
        return None

    async def create_course_dropdown_field(self, name: str, labels: Sequence[str] = ()) -> dict:
        """Create the dropdown course field (F2); returns the field with its options."""
        body = {"type": "dropdown", "translations": {"english": name},
                "dropdown_options": [{"translations": {"english": label}} for label in labels]}

        async def recover() -> dict | None:
            found = await self.find_course_field(name)
            if found is None:
                return None
            return await self.get_course_field(found["id"])

        return await self._call(route("course_field_create"), json=body, recover=recover,
                                idempotent=False)

    async def update_course_dropdown_options(
        self,
        field_id: int | str,
        *,
        new: Sequence[str] = (),
        renamed: Mapping[Any, str] | None = None,
        deleted: Sequence[Any] = (),
    ) -> dict:
        """Add options (`new`: labels), rename options (`renamed`: option id → new label) and
        delete options (`deleted`: option ids) of a dropdown course field in one call; returns
        the field with its options (F2, T3). Nothing to do → no write call, the field is read.

        After an ambiguous failure the field is read: what is already applied is left out of
        the retry, so no option is ever added twice."""
        renamed = dict(renamed or {})
        if not new and not renamed and not deleted:
            return await self.get_course_field(field_id)
        ops: dict[str, list] = {}
        if new:
            ops["new"] = [{"translations": {"english": label}} for label in new]
        if renamed:
            ops["updated"] = [{"id_option": _option_id(k), "translations": {"english": v}}
                              for k, v in renamed.items()]
        if deleted:
            ops["deleted"] = [{"id_option": _option_id(k)} for k in deleted]
        body = {"dropdown_options": ops}

        async def recover() -> dict | None:
            current = await self.get_course_field(field_id)
            options = {str(o.get("id")): option_label(o) for o in field_options(current)}
            labels = set(options.values())
            remaining: dict[str, list] = {}
            todo_new = [lbl for lbl in new if lbl not in labels]
            if todo_new:
                remaining["new"] = [{"translations": {"english": lbl}} for lbl in todo_new]
            todo_ren = [(k, v) for k, v in renamed.items()
                        if str(k) in options and options[str(k)] != v]
            if todo_ren:
                remaining["updated"] = [{"id_option": _option_id(k), "translations": {"english": v}}
                                        for k, v in todo_ren]
            todo_del = [k for k in deleted if str(k) in options]
            if todo_del:
                remaining["deleted"] = [{"id_option": _option_id(k)} for k in todo_del]
            if not remaining:
                return current
            body["dropdown_options"] = remaining  # send only what is still missing
            return None

        return await self._call(route("course_field_update"), path={"id": field_id}, json=body,
                                recover=recover, idempotent=False)

    # ---------------------------------------------------------------------------------------
    # enrollments (F3, F7)

    async def iter_enrollments(
        self,
        *,
        course_ids: Iterable[int | str] | None = None,
        user_ids: Iterable[int | str] | None = None,
        statuses: Iterable[str] | None = None,
        updated_from: dt.datetime | str | None = None,
    ) -> AsyncIterator[dict]:
        """Course enrollments, many courses / users per call (`course_id[]`, `user_id[]`), e.g.
        `statuses=["completed"]`. An empty id list yields nothing; None means all.
        `updated_from`: only enrollments changed since ([I] filter)."""
        r, extra = self._changed_since("course_enrollments", "course_enrollments_changed", updated_from)
        if statuses:
            extra["enrollment_status"] = list(statuses)
        async for item in self._chunked_pages(r, {"course_id": course_ids, "user_id": user_ids}, extra):
            yield item

    async def set_enrollment_status(self, course_id: int | str, user_id: int | str, status: str,
                                    completion_date: str | None = None) -> Any:
        body: dict[str, Any] = {"status": status}
        if completion_date:
            body["date_complete"] = completion_date
        return await self._call(route("enrollment"),
                                path={"course_id": course_id, "user_id": user_id}, json=body)

    # ---------------------------------------------------------------------------------------
    # learning plans (F3b)

    async def iter_learning_plans(self) -> AsyncIterator[dict]:
        async for item in self._pages(route("learning_plans")):
            yield item

    async def iter_learning_plan_courses(self, lp_id: int | str) -> AsyncIterator[dict]:
        async for item in self._pages(route("lp_courses"), path={"id": lp_id}):
            yield item

    async def iter_learning_plan_enrollments(
        self,
        *,
        lp_ids: Iterable[int | str] | None = None,
        user_ids: Iterable[int | str] | None = None,
        statuses: Iterable[str] | None = None,
        updated_from: dt.datetime | str | None = None,
    ) -> AsyncIterator[dict]:
        """Learning-plan enrollments with their status and completion date (asked for through
        `extra_fields[]`; without them Docebo leaves those columns out). `statuses` is applied
        to `enrollment_status` here, since no public source documents a server-side filter.
        `updated_from`: only enrollments changed since ([I] filter)."""
        wanted = {s.lower() for s in statuses} if statuses else None
        r, extra = self._changed_since("lp_enrollments", "lp_enrollments_changed", updated_from)
        extra["extra_fields"] = list(LP_EXTRA_FIELDS)
        async for item in self._chunked_pages(
                r, {"learning_plan_id": lp_ids, "user_id": user_ids}, extra):
            if wanted is None or str(item.get("enrollment_status", "")).lower() in wanted:
                yield item

    # ---------------------------------------------------------------------------------------
    # external training (F5)

    async def iter_external_trainings(self, *, user_ids: Iterable[int | str] | None = None
                                      ) -> AsyncIterator[dict]:
        async for item in self._chunked_pages(route("external_trainings"), {"user_id": user_ids}):
            yield item

    async def create_external_training(self, fields: Mapping[str, Any]) -> dict:
        """Create a learner's external training; returns `data` (with `id`), or the existing
        record (same user, course name and start date) found after an ambiguous failure."""
        payload = dict(fields)

        async def recover() -> dict | None:
            user_id: Any = payload.get("user_id")  # as the caller gave it (the API requires one)
            async for item in self.iter_external_trainings(user_ids=[user_id]):
                if str(item.get("user_id")) == str(payload.get("user_id")) \
                        and item.get("course_name") == payload.get("course_name") \
                        and _same_time(item.get("date_from"), payload.get("date_from")):
                    return item
            return None

        return await self._call(route("external_training_create"), json=payload,
                                recover=recover, idempotent=False)

    async def update_external_training(self, training_id: int | str, fields: Mapping[str, Any]) -> Any:
        return await self._call(route("external_training_update"), path={"id": training_id},
                                json=dict(fields))

    async def delete_external_training(self, training_id: int | str) -> None:
        await self._call(route("external_training_delete"), path={"id": training_id})

    # ---------------------------------------------------------------------------------------
    # certifications (F4, F5)

    async def iter_certifications(self) -> AsyncIterator[dict]:
        async for item in self._pages(route("certifications")):
            yield item

    async def iter_certification_awards(
        self,
        *,
        user_ids: Iterable[int | str] | None = None,
        certification_ids: Iterable[int | str] | None = None,
        updated_from: dt.datetime | str | None = None,
    ) -> AsyncIterator[dict]:
        """Certification awards; `updated_from`: only awards changed since ([I] filter)."""
        r, extra = self._changed_since("certification_awards", "certification_awards_changed", updated_from)
        async for item in self._chunked_pages(r, {"user_id": user_ids, "id_cert": certification_ids},
                                              extra):
            yield item

    async def create_certification_award(self, fields: Mapping[str, Any]) -> dict:
        """Award a certification; returns `data` (with `id_award`), or the existing award (same
        user, certification and issue date) found after an ambiguous failure."""
        payload = dict(fields)

        async def recover() -> dict | None:
            user_id: Any = payload.get("user_id")  # as the caller gave them (the API requires both)
            id_cert: Any = payload.get("id_cert")
            async for item in self.iter_certification_awards(user_ids=[user_id], certification_ids=[id_cert]):
                if str(item.get("user_id")) == str(payload.get("user_id")) \
                        and str(item.get("id_cert")) == str(payload.get("id_cert")) \
                        and (payload.get("issued_on") is None
                             or _same_time(item.get("issued_on"), payload.get("issued_on"))):
                    return item
            return None

        return await self._call(route("certification_award_create"), json=payload,
                                recover=recover, idempotent=False)

    async def update_certification_award(self, award_id: int | str, fields: Mapping[str, Any]) -> Any:
        return await self._call(route("certification_award_update"), path={"id": award_id},
                                json=dict(fields))

    async def delete_certification_award(self, award_id: int | str) -> None:
        await self._call(route("certification_award_delete"), path={"id": award_id})

    # ---------------------------------------------------------------------------------------
    async def test_connection(self) -> ConnectionReport:
        """Obtain a token and read one user: says whether the URL, the credentials and the
        permissions work, and what to fix if not."""
        if not self.base_url.startswith(("http://", "https://")):
            return ConnectionReport(False, f"The Docebo base URL {self.base_url!r} must start with "
                                           "https:// (your platform URL, e.g. "
                                           "https://acme.docebosaas.com).")
        if not self.client_id:
            return ConnectionReport(False, "No Docebo OAuth2 client id is configured.")
        if not self._client_secret:
            return ConnectionReport(False, "No Docebo client secret is set (keyring entry "
                                           "docebo_client_secret or the DOCEBO_CLIENT_SECRET "
                                           "environment variable).")
        if self.grant == "password" and (not self.username or not self._password):
            return ConnectionReport(False, "The password grant needs a Docebo user name and "
                                           "password (DOCEBO_PASSWORD).")
        step = "obtaining an access token"
        try:
            async with self._token_lock:
                self._token = None
                await self._fetch_token(max_retries=1)
            step = "reading users"
            r = route("users")
            response = await self._session.request(r.method, r.path, params=[("page_size", "1")],
                                                   max_retries=1)
            body = json_body(response, SERVICE, r.call)
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, dict) or not isinstance(data.get("items"), list):
                raise UnexpectedResponseError(SERVICE, r.call, response.status_code,
                                              "the answer is not a Docebo list")
        except AuthenticationError as exc:
            return ConnectionReport(False, f"Docebo refused the credentials while {step} "
                                           f"(HTTP {exc.status}: {exc.message}).")
        except PermissionDeniedError as exc:
            return ConnectionReport(False, f"The API client may not read users (HTTP 403: "
                                           f"{exc.message}); use a superadmin-level OAuth2 app.")
        except NotFoundError as exc:
            return ConnectionReport(False, f"{self.base_url} has no Docebo API (HTTP 404 while "
                                           f"{step}: {exc.message}). Use your platform URL "
                                           "without a path.")
        except NetworkError as exc:
            return ConnectionReport(False, f"Cannot reach Docebo at {self.base_url}: {exc.message}. "
                                           "Check the base URL and the network.")
        except UnexpectedResponseError as exc:
            return ConnectionReport(False, f"{self.base_url} does not answer like the Docebo API "
                                           f"while {step}: {exc.message}.")
        except ApiError as exc:
            return ConnectionReport(False, str(exc))
        total = data.get("total_count")
        seen = f"; {total} user(s)" if total is not None else ""
        return ConnectionReport(True, f"Connected to Docebo at {self.base_url} as OAuth2 client "
                                      f"{self.client_id} ({self.grant} grant){seen}.")
