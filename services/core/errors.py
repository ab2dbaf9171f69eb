"""Typed errors of the Credly and Docebo clients.

Design notes: docs/design/core.md
"""

from __future__ import annotations

from collections.abc import Iterable

REDACTED = "***"


class Secret:
    """A credential held in memory whose `repr()`/`str()` never show the value.

    Tracebacks with locals, debug dumps and `repr(client)` then print `Secret('***')`.
    `reveal()` is the single place the value is read (to build an Authorization header).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str | Secret | None) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        self._value = value or ""

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self):  # never pickle a credential into some cache by accident
        raise TypeError("Secret values cannot be pickled")


def redact(text: str, secrets: Iterable[str | Secret | None]) -> str:
    """Replace every occurrence of each (non-trivial) secret in `text` by `***`.

    Secrets shorter than 4 characters are not searched for: they would blank out ordinary words
    and such a value is not a real credential anyway.
    """
    for s in secrets:
        value = s.reveal() if isinstance(s, Secret) else s
        if value and len(value) >= 4 and value in text:
            text = text.replace(value, REDACTED)
    return text


class ApiError(Exception):
    """A call to Credly or Docebo failed.

    `service`: "Credly" or "Docebo"; `call`: "METHOD /route/{template}"; `status`: the HTTP
    status or None when no response came back; `message`: the service's own message (or the
    network error's description). `retryable` says whether trying the same call later may work
    (429, 5xx, network), which the webhook worker uses for W3 back-off.
    """

    retryable = False
    kind = "error"

    def __init__(self, service: str, call: str, status: int | None, message: str) -> None:
        self.service = service
        self.call = call
        self.status = status
        self.message = message
        super().__init__(self.__str__())

    def __str__(self) -> str:
        status = f"HTTP {self.status}" if self.status is not None else "no response"
        message = self.message or "(no message from the service)"
        return f"{self.service} {self.call} failed ({self.kind}, {status}): {message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(service={self.service!r}, call={self.call!r}, "
            f"status={self.status!r}, message={self.message!r})"
        )

    def __reduce__(self):
        return (_rebuild, (type(self), self.service, self.call, self.status, self.message))


def _rebuild(cls, service, call, status, message):
    return cls(service, call, status, message)


class AuthenticationError(ApiError):
    """401 (or a rejected OAuth2 token request): the credentials are wrong or expired."""

    kind = "authentication failed"


class PermissionDeniedError(ApiError):
    """403: the credentials are valid but lack the permission for this call."""

    kind = "permission denied"


class NotFoundError(ApiError):
    """404: the object or route does not exist (or the organization id / base URL is wrong)."""

    kind = "not found"


class ConflictError(ApiError):
    """409, or a 422 that reports a duplicate."""

    kind = "conflict"


class ValidationError(ApiError):
    """400, or a 422 other than a duplicate: the service refused the data we sent."""

    kind = "invalid request"


class RateLimitedError(ApiError):
    """429 still returned after every retry."""

    kind = "rate limited"
    retryable = True


class ServerError(ApiError):
    """5xx still returned after every retry."""

    kind = "server error"
    retryable = True


class NetworkError(ApiError):
    """No usable response: connection refused, DNS failure, timeout or a dropped connection, after
    every retry. `status` is None."""

    kind = "network error"
    retryable = True


class UnexpectedResponseError(ApiError):
    """A 2xx whose body is not what the API documents (e.g. HTML from a wrong base URL)."""

    kind = "unexpected response"


def error_for_status(status: int, *, duplicate: bool = False) -> type[ApiError]:
    """The `ApiError` subclass for an HTTP status (after retries)."""
    if status == 401:
        return AuthenticationError
    if status == 403:
        return PermissionDeniedError
    if status in (404, 410):
        return NotFoundError
    if status == 409 or (status == 422 and duplicate):
        return ConflictError
    if status in (400, 422) or 400 <= status < 500 and status != 429:
        return ValidationError
    if status == 429:
        return RateLimitedError
    if status >= 500:
        return ServerError
    return UnexpectedResponseError
