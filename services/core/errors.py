"""One error family: every error the product expects derives from `CredlyConsoleError`, which
carries the admin-facing message and the CLI exit status; the CLI and the console both ask
`is_expected()` (anything else is a bug and shows its traceback). Also the typed API errors.

Design notes: docs/design/core.md
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.core.secrets import Secret

REDACTED = "***"

# Exit statuses of every command (docs/cli.md "Exit codes").
EXIT_OK = 0
EXIT_FAILURE = 1  # the work failed: items failed, a call failed, a value was refused
EXIT_USAGE = 2  # bad input: usage, configuration, a database this program cannot use
EXIT_BUSY = 3  # nothing was done because the same flow is already running elsewhere


class CredlyConsoleError(Exception):
    """An error the product expects and explains: `str()` is the message for the admin (one
    line naming what is wrong and how to fix it); `details()` adds lines under it;
    `exit_code` is the CLI's exit status."""

    exit_code: int = EXIT_FAILURE
    # Whether the same work may succeed later without anyone changing anything (a lock released,
    # a service back up): the inbox worker retries those (W3).
    retryable: bool = False

    def headline(self) -> str:
        """The one line printed after `error:` (the whole message unless `details()` splits it)."""
        return str(self)

    def details(self) -> list[str]:
        return []


class UsageError(CredlyConsoleError):
    """Bad input to a command: a value out of range, an unknown name."""

    exit_code = EXIT_USAGE


class MissingError(CredlyConsoleError, LookupError):
    """What the admin named is not there (any more): a mapping deleted meanwhile, a connection
    that is not configured."""


class FileAccessError(CredlyConsoleError):
    """A file the admin named cannot be read or written (CSV import/export)."""

    exit_code = EXIT_USAGE

    @classmethod
    def of(cls, path: object, exc: OSError, doing: str) -> FileAccessError:
        if isinstance(exc, (NotADirectoryError, FileExistsError)) and exc.filename != str(path):
            # mkdir of a parent that is a regular file: errno says "File exists", which misleads
            return cls(f"cannot {doing} {path}: a part of its directory path is a file, not a directory")
        reason = exc.strerror or type(exc).__name__
        return cls(f"cannot {doing} {path}: {reason}")


def is_expected(exc: BaseException) -> bool:
    """True for the errors the product explains (the CLI prints one line and exits with the
    error's code; the console shows a toast); False for a bug (traceback / error modal)."""
    return isinstance(exc, CredlyConsoleError)


def exit_code_of(exc: BaseException) -> int:
    return exc.exit_code if isinstance(exc, CredlyConsoleError) else EXIT_FAILURE


def redact(text: str, secrets: Iterable[str | Secret | None]) -> str:
    """Replace every occurrence of each (non-trivial) secret in `text` by `***`.

    Secrets shorter than 4 characters are not searched for: they would blank out ordinary words
    and such a value is not a real credential anyway.
    """
    for s in secrets:
        value = s if isinstance(s, str) or s is None else s.reveal()
        if value and len(value) >= 4 and value in text:
            text = text.replace(value, REDACTED)
    return text


class ApiError(CredlyConsoleError):
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
