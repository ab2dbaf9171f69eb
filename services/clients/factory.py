"""Build the Credly and Docebo clients from the configuration and the secret store.

Design notes: docs/design/clients.md
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from services.clients.credly import CredlyClient
from services.clients.docebo import DoceboClient
from services.clients.http import RateLimiter

if TYPE_CHECKING:  # pragma: no cover
    from services.core.config import AppConfig
    from services.core.secrets import SecretStore

DEFAULT_DOCEBO_PER_HOUR = 1000
DEFAULT_DOCEBO_BURST = 50

_limiters: dict[tuple, RateLimiter] = {}
_limiters_lock = threading.Lock()


def shared_limiter(service: str, base_url: str, *, per_minute: int | None = None,
                   per_hour: int | None = None, burst: int | None = None) -> RateLimiter:
    """The process-wide limiter of one API at one base URL with these settings."""
    key = (service, (base_url or "").rstrip("/").lower(), per_minute, per_hour, burst)
    with _limiters_lock:
        limiter = _limiters.get(key)
        if limiter is None:
            if per_hour:
                limiter = RateLimiter.per_hour(int(per_hour), burst)
            elif per_minute:
                limiter = RateLimiter.per_minute(int(per_minute), burst)
            else:
                limiter = RateLimiter.unlimited()
            _limiters[key] = limiter
        return limiter


def reset_shared_limiters() -> None:
    """Forget the shared limiters (tests)."""
    with _limiters_lock:
        _limiters.clear()


def _positive_int(value: Any) -> int | None:
    try:
        number = int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
    return number if number and number > 0 else None


def build_credly(config: AppConfig, secrets: SecretStore, **kw: Any) -> CredlyClient:
    """A `CredlyClient` for `config.credly` and the `credly_token` secret. `kw` goes to the
    constructor (`policy`, `transport`, `limiter`)."""
    c = config.credly
    if "limiter" not in kw or kw["limiter"] is None:
        kw["limiter"] = shared_limiter(
            "Credly", c.base_url, per_minute=_positive_int(getattr(c, "rate_limit_per_minute", None)),
            burst=_positive_int(getattr(c, "burst", None)))
    return CredlyClient(c.base_url or "", c.organization_id or "",
                        secrets.get("credly_token") or "", **kw)


def build_docebo(config: AppConfig, secrets: SecretStore, **kw: Any) -> DoceboClient:
    """A `DoceboClient` for `config.docebo` and the `docebo_client_secret` (and, for the password
    grant, `docebo_password`) secrets. `kw` goes to the constructor."""
    d = config.docebo
    grant = getattr(d, "grant", None) or "client_credentials"
    if "limiter" not in kw or kw["limiter"] is None:
        # Unset → Docebo's documented 1,000 calls/hour; 0 → no client-side limit.
        raw = getattr(d, "rate_limit_per_hour", None)
        per_hour = DEFAULT_DOCEBO_PER_HOUR if raw in (None, "") else _positive_int(raw)
        kw["limiter"] = shared_limiter(
            "Docebo", d.base_url, per_hour=per_hour,
            burst=_positive_int(getattr(d, "burst", None)) or DEFAULT_DOCEBO_BURST)
    password = secrets.get("docebo_password") if grant == "password" else None
    return DoceboClient(d.base_url or "", d.client_id or "",
                        secrets.get("docebo_client_secret") or "", grant=grant,
                        username=getattr(d, "username", None) or None, password=password, **kw)
