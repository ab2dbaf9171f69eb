"""What goes on the wire and comes back: PHP-style query parameters, route formatting, the
service's own error message, JSON bodies (split out of http.py, issue 15).

Design notes: docs/design/clients.md
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from services.core.errors import UnexpectedResponseError

# --------------------------------------------------------------------------------------------
# Helpers shared by the clients


def php_params(params: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """Query parameters in PHP style, as Docebo expects: a list value `ids=[1, 2]` becomes
    `ids[]=1&ids[]=2`; None values are dropped; booleans become 1/0."""
    out: list[tuple[str, str]] = []
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, (list, tuple, set, frozenset)):
            name = key if key.endswith("[]") else f"{key}[]"
            out.extend((name, _scalar(v)) for v in value)
        else:
            out.append((key, _scalar(value)))
    return out


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def format_route(route: str, path: Mapping[str, Any] | None) -> str:
    """Fill `{name}` placeholders with percent-encoded values (no `/` or `?` can slip in)."""
    if not path:
        return route
    return route.format(**{k: quote(str(v), safe="") for k, v in path.items()})


def service_message(response: httpx.Response) -> str:
    """The service's own error message from a response body, whatever its shape.

    Credly: `{"data": {"message": ...}}`; Docebo: `{"message": ...}`, `{"name": ..., "message":
    ...}`, OAuth2 `{"error": ..., "error_description": ...}` or a list of `{"message": ...}`.
    Falls back to the start of the body text; an HTML page is reported as such.
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    message = _message_from(body) if body is not None else None
    if message:
        return message[:500]
    ctype = response.headers.get("content-type", "")
    text = response.text.strip() if response.content else ""
    if "html" in ctype or text.lower().startswith(("<!doctype", "<html")):
        return f"an HTML page instead of the API's JSON (is the base URL right?) — {response.reason_phrase}"
    if text:
        return " ".join(text.split())[:300]
    return response.reason_phrase or ""


def _message_from(body: Any) -> str | None:
    if isinstance(body, list):
        parts = [m for m in (_message_from(b) for b in body[:5]) if m]
        return "; ".join(parts) or None
    if isinstance(body, str):
        return body
    if not isinstance(body, dict):
        return None
    data = body.get("data")
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return data["message"]
    if isinstance(body.get("error_description"), str):
        err = body.get("error")
        return f"{err}: {body['error_description']}" if isinstance(err, str) else body["error_description"]
    for key in ("message", "error", "detail", "title"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, (list, dict)):
            nested = _message_from(value)
            if nested:
                return nested
    errors = body.get("errors")
    if errors:
        return _message_from(errors)
    if isinstance(data, (list, str)):
        return _message_from(data)
    return None


def json_body(response: httpx.Response, service: str, call: str) -> Any:
    """The parsed JSON of a 2xx response, or UnexpectedResponseError saying what came instead."""
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise UnexpectedResponseError(
            service, call, response.status_code,
            f"the response is not JSON ({service_message(response)})",
        ) from None
