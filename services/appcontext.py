"""What the console (and the demo) runs against: configuration, secrets, the database file and
the factories that build the two API clients.

Design notes: docs/design/wiring.md
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.core.config import AppConfig
from services.core.errors import MissingError
from services.core.secrets import SecretStore
from services.store.db import Store

ClientFactory = Callable[[], Any]

SERVICES: tuple[str, ...] = ("credly", "docebo")


@dataclass
class AppContext:
    """Everything the console needs from the outside world.

    `config_path` is where theme and connection edits are saved (None: keep them in memory only,
    e.g. a demo that must not touch the user's file). `credly_factory` / `docebo_factory` return a
    new client each call (None: that service is not available, and screens say so instead of
    calling it).
    """

    config: AppConfig
    secrets: SecretStore
    database_path: Path
    config_path: Path | None = None
    credly_factory: ClientFactory | None = None
    docebo_factory: ClientFactory | None = None
    label: str = ""  # shown in the title bar, e.g. "demo"
    _limiters: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_environment(cls) -> AppContext:
        """The context of `credly-console` on this machine: config file, keyring, database, and
        clients built from the current configuration. Raises `ConfigError` on a bad file."""
        from services.core.config import config_path, database_path, load_config
        from services.core.secrets import KeyringSecrets

        path = config_path()
        ctx = cls(config=load_config(path), secrets=KeyringSecrets(), database_path=database_path(),
                  config_path=path)
        ctx.credly_factory = ctx._build_credly
        ctx.docebo_factory = ctx._build_docebo
        return ctx

    def _build_credly(self) -> Any:
        from services.clients.factory import build_credly

        return build_credly(self.config, self.secrets, database=self.database_path)

    def _build_docebo(self) -> Any:
        from services.clients.factory import build_docebo

        return build_docebo(self.config, self.secrets, database=self.database_path)

    # -- use ---------------------------------------------------------------------------------
    def open_store(self) -> Store:
        """A new `Store` on the context's database, for the calling thread only."""
        return Store(self.database_path)

    def has_client(self, service: str) -> bool:
        return self._factory(service) is not None

    def _factory(self, service: str) -> ClientFactory | None:
        if service == "credly":
            return self.credly_factory
        if service == "docebo":
            return self.docebo_factory
        raise ValueError(f"unknown service {service!r}; expected one of {', '.join(SERVICES)}")

    def make_client(self, service: str) -> Any:
        """A new client of `service` ("credly" or "docebo"); call it inside the event loop that
        will use it, and `aclose()` it when done. Raises `LookupError` when not available."""
        factory = self._factory(service)
        if factory is None:
            raise MissingError(f"no {service.capitalize()} connection is available in this console")
        client = factory()
        limiter = getattr(client, "limiter", None)
        if limiter is not None:
            with self._lock:
                self._limiters[service] = limiter
        return client

    def limiter(self, service: str) -> Any | None:
        """The rate limiter the clients of `service` use (their `remaining()` feeds the
        dashboard), or None before the first client of that service was built."""
        with self._lock:
            return self._limiters.get(service)
