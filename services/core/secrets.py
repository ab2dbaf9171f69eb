"""Secrets: the OS keyring, overridable by environment variables (DESIGN.md "Config").

Design notes: docs/design/core.md
"""

from __future__ import annotations

import os
from typing import Protocol, runtime_checkable

from services.core.errors import REDACTED, CredlyConsoleError

KEYRING_SERVICE = "credly-console"

SECRET_ENV: dict[str, str] = {
    "credly_token": "CREDLY_TOKEN",
    "docebo_client_secret": "DOCEBO_CLIENT_SECRET",
    "webhook_secret": "CREDLY_CONSOLE_WEBHOOK_SECRET",
    "smtp_password": "SMTP_PASSWORD",
    "docebo_password": "DOCEBO_PASSWORD",
}

SECRET_DESCRIPTIONS: dict[str, str] = {
    "credly_token": "Credly organization API token",
    "docebo_client_secret": "Docebo OAuth2 client secret",
    "webhook_secret": "secret in the webhook URLs (and Docebo Basic-auth password)",
    "smtp_password": "SMTP password for notification mail",
    "docebo_password": "Docebo user password (only for grant = \"password\")",
}

SECRET_NAMES: tuple[str, ...] = tuple(SECRET_ENV)


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


class UnknownSecretError(CredlyConsoleError, KeyError):
    """A name that is not one of `SECRET_NAMES`."""

    def __str__(self) -> str:  # KeyError quotes its argument; say it plainly
        return str(self.args[0])


class NoKeyringError(CredlyConsoleError, RuntimeError):
    """No usable keyring backend: the secret cannot be stored. The message names the
    environment variable to set instead."""

    def __init__(self, name: str, detail: str = "") -> None:
        self.name = name
        self.env_var = SECRET_ENV[name]
        why = f": {detail}" if detail else ""
        super().__init__(
            f"no usable keyring backend on this machine{why}; the {name} cannot be stored in "
            f"the keyring: set the environment variable {self.env_var} instead"
        )


@runtime_checkable
class SecretStore(Protocol):
    def get(self, name: str) -> str | None: ...

    def set(self, name: str, value: str) -> None: ...

    def delete(self, name: str) -> None: ...


def _check_name(name: str) -> None:
    if name not in SECRET_ENV:
        raise UnknownSecretError(f"unknown secret {name!r}; expected one of {', '.join(SECRET_NAMES)}")


def keyring_backend_problem() -> str | None:
    """Why the keyring cannot store secrets, or None when it can.

    The keyring package falls back to `keyring.backends.fail.Keyring` (every call raises) when
    it finds nothing, or to a `ChainerBackend` that chains zero viable backends; the `null`
    backend silently drops everything. All three mean "no usable backend"."""
    try:
        import keyring
        from keyring.backends import chainer, fail
    except Exception as exc:  # pragma: no cover - keyring is a dependency
        return f"the keyring package cannot be imported: {exc}"
    try:
        backend = keyring.get_keyring()
    except Exception as exc:  # pragma: no cover - depends on the platform
        return f"the keyring backend fails to load: {exc}"
    if isinstance(backend, fail.Keyring):
        return "keyring found no backend (no Secret Service, macOS Keychain or Windows Credential Locker)"
    try:
        from keyring.backends import null

        if isinstance(backend, null.Keyring):
            return "the keyring backend is the null backend, which stores nothing"
    except ImportError:  # pragma: no cover
        pass
    if isinstance(backend, chainer.ChainerBackend) and not backend.backends:
        return "keyring found no backend to chain"
    return None


def keyring_backend_name() -> str:
    """A short description of the keyring backend in use, for `locate` and `secrets status`."""
    try:
        import keyring

        backend = keyring.get_keyring()
        return f"{type(backend).__module__}.{type(backend).__name__}"
    except Exception as exc:  # pragma: no cover
        return f"unavailable ({exc})"


class KeyringSecrets:
    """Secrets from the environment first, then the OS keyring (service `credly-console`)."""

    def __init__(self, service: str = KEYRING_SERVICE) -> None:
        self.service = service

    def get(self, name: str) -> str | None:
        _check_name(name)
        env = os.environ.get(SECRET_ENV[name], "")
        if env:
            return env
        if keyring_backend_problem() is not None:
            return None
        import keyring
        from keyring.errors import KeyringError

        try:
            value = keyring.get_password(self.service, name)
        except KeyringError:
            # A locked or broken keyring reads as "not set"; the caller reports the missing
            # secret by name (never its value).
            return None
        return value or None

    def source(self, name: str) -> str | None:
        """Where `get(name)` would find the secret: "env", "keyring" or None (not set)."""
        _check_name(name)
        if os.environ.get(SECRET_ENV[name], ""):
            return "env"
        if self.get(name) is not None:
            return "keyring"
        return None

    def set(self, name: str, value: str) -> None:
        _check_name(name)
        if not value:
            raise ValueError(f"the {name} cannot be empty; use delete to remove it")
        problem = keyring_backend_problem()
        if problem is not None:
            raise NoKeyringError(name, problem)
        import keyring
        from keyring.errors import KeyringError

        try:
            keyring.set_password(self.service, name, value)
        except KeyringError as exc:
            raise NoKeyringError(name, type(exc).__name__) from None

    def delete(self, name: str) -> None:
        _check_name(name)
        problem = keyring_backend_problem()
        if problem is not None:
            raise NoKeyringError(name, problem)
        import keyring
        from keyring.errors import KeyringError, PasswordDeleteError

        try:
            keyring.delete_password(self.service, name)
        except PasswordDeleteError:
            pass  # not stored: deleting is a no-op
        except KeyringError as exc:
            raise NoKeyringError(name, type(exc).__name__) from None


class MemorySecrets:
    """Secrets in a dict (demo mode, tests). Ignores the environment."""

    def __init__(self, values: dict[str, str] | None = None) -> None:
        self._values: dict[str, str] = {}
        for name, value in (values or {}).items():
            self.set(name, value)

    def get(self, name: str) -> str | None:
        _check_name(name)
        return self._values.get(name) or None

    def source(self, name: str) -> str | None:
        return "memory" if self.get(name) is not None else None

    def set(self, name: str, value: str) -> None:
        _check_name(name)
        self._values[name] = value

    def delete(self, name: str) -> None:
        _check_name(name)
        self._values.pop(name, None)

    def __repr__(self) -> str:  # never show the values
        return f"MemorySecrets(names={sorted(self._values)})"
