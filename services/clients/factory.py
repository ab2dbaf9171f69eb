"""Build the Credly and Docebo clients from the configuration and the secret store.

Design notes: docs/design/clients.md
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.clients.budget import SharedBudget
from services.clients.credly import CredlyClient
from services.clients.docebo import DoceboClient
from services.clients.http import RateLimiter

if TYPE_CHECKING:  # pragma: no cover
    from services.core.config import AppConfig
    from services.core.secrets import SecretStore

DEFAULT_DOCEBO_PER_HOUR = 1000
DEFAULT_DOCEBO_BURST = 50
DEFAULT_BATCH_SHARE_PERCENT = 80

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


_budgets: dict[tuple, SharedBudget] = {}


def install_budget(database: Path, service: str, *, limit: int | None, burst: int | None,
                   batch_share: float = 0.8, window: float = 3600.0) -> SharedBudget:
    """The budget of `service` shared by every process on `database` (issue 15 point 1): its state
    is the file `<database>.<service>-budget` beside the database."""
    path = Path(database).with_name(f"{Path(database).name}.{service.lower()}-budget")
    key = (str(path), limit, burst, batch_share, window)
    with _limiters_lock:
        budget = _budgets.get(key)
        if budget is None:
            budget = SharedBudget(path, limit=limit, window=window, burst=burst,
                                  batch_share=batch_share, service=service)
            _budgets[key] = budget
        return budget


def reset_shared_limiters() -> None:
    """Forget the shared limiters (tests)."""
    with _limiters_lock:
        _limiters.clear()
        for budget in _budgets.values():
            budget.close()
        _budgets.clear()


def _positive_int(value: Any) -> int | None:
    try:
        number = int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
    return number if number and number > 0 else None


def _docebo_limit(config: AppConfig) -> tuple[int | None, int]:
    raw = getattr(config.docebo, "rate_limit_per_hour", None)
    per_hour = DEFAULT_DOCEBO_PER_HOUR if raw in (None, "") else _positive_int(raw)
    return per_hour, _positive_int(getattr(config.docebo, "burst", None)) or DEFAULT_DOCEBO_BURST


def docebo_budget(config: AppConfig, database: Path) -> SharedBudget:
    """The install's Docebo budget as `[docebo]` sets it (`rate_limit_per_hour`, `burst`,
    `batch_share_percent`), shared by every process on `database`."""
    per_hour, burst = _docebo_limit(config)
    share = (_positive_int(getattr(config.docebo, "batch_share_percent", None)) or DEFAULT_BATCH_SHARE_PERCENT) / 100
    window = _positive_int(getattr(config.docebo, "rate_limit_window_seconds", None)) or 3600
    return install_budget(database, "Docebo", limit=per_hour, burst=burst, batch_share=share, window=window)


def credly_budget(config: AppConfig, database: Path) -> SharedBudget:
    """The install's Credly budget: `[credly] rate_limit_per_minute` when set (else no limit, but
    Retry-After pauses and the counts by caller class are still shared by every process)."""
    per_minute = _positive_int(getattr(config.credly, "rate_limit_per_minute", None))
    burst = max(1, per_minute // 10) if per_minute else None
    share = (_positive_int(getattr(config.docebo, "batch_share_percent", None)) or DEFAULT_BATCH_SHARE_PERCENT) / 100
    return install_budget(database, "Credly", limit=per_minute, burst=burst, batch_share=share, window=60.0)


def build_credly(config: AppConfig, secrets: SecretStore, *, database: Path | None = None,
                 **kw: Any) -> CredlyClient:
    """A `CredlyClient` for `config.credly` and the `credly_token` secret. With `database`, its
    calls go through the install's Credly budget. `kw` goes to the constructor (`policy`,
    `transport`, `limiter`)."""
    c = config.credly
    if ("limiter" not in kw or kw["limiter"] is None) and database is not None:
        kw["limiter"] = credly_budget(config, database)
    elif "limiter" not in kw or kw["limiter"] is None:
        kw["limiter"] = shared_limiter(
            "Credly", c.base_url, per_minute=_positive_int(getattr(c, "rate_limit_per_minute", None)),
            burst=_positive_int(getattr(c, "burst", None)))
    return CredlyClient(c.base_url or "", c.organization_id or "",
                        secrets.get("credly_token") or "", **kw)


def build_docebo(config: AppConfig, secrets: SecretStore, *, database: Path | None = None,
                 **kw: Any) -> DoceboClient:
    """A `DoceboClient` for `config.docebo` and the `docebo_client_secret` (and, for the password
    grant, `docebo_password`) secrets. With `database`, its calls count against the install's
    shared budget (every process on that database), else against this process's limiter.
    `kw` goes to the constructor."""
    d = config.docebo
    grant = getattr(d, "grant", None) or "client_credentials"
    if "limiter" not in kw or kw["limiter"] is None:
        # Unset → Docebo's documented 1,000 calls/hour; 0 → no client-side limit.
        per_hour, burst = _docebo_limit(config)
        if database is not None:
            kw["limiter"] = docebo_budget(config, database)
        else:
            kw["limiter"] = shared_limiter("Docebo", d.base_url, per_hour=per_hour, burst=burst)
    password = secrets.get("docebo_password") if grant == "password" else None
    return DoceboClient(d.base_url or "", d.client_id or "",
                        secrets.get("docebo_client_secret") or "", grant=grant,
                        username=getattr(d, "username", None) or None, password=password, **kw)
