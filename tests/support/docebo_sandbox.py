"""Helpers of the Docebo sandbox tests: the small demo world, a token, paging, a loopback server;
the fixtures on them are in tests/sandbox/docebo/conftest.py."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import httpx
import uvicorn

from services.sandbox.demo_data import DemoData, generate
from services.sandbox.docebo.state import DoceboState

_SMALL: DemoData | None = None


def small_demo() -> DemoData:
    """The small world, generated once per session (loading copies it, so it is never mutated)."""
    global _SMALL
    if _SMALL is None:
        _SMALL = generate("small", 0)
    return _SMALL


async def get_token(client: httpx.AsyncClient, state: DoceboState) -> str:
    r = await client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": state.client_id, "client_secret": state.client_secret},
    )
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


async def all_items(client: httpx.AsyncClient, path: str, params=None, page_size: int = 200) -> list[dict]:
    """Every item of a list route, page by page until has_more_data is false."""
    items, page = [], 1
    while True:
        r = await client.get(path, params=[*(params or []), ("page", page), ("page_size", page_size)])
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        items.extend(data["items"])
        if not data["has_more_data"]:
            return items
        page += 1


@contextlib.asynccontextmanager
async def serve(app) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on 127.0.0.1 and a free port, in this event loop; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # connections wait in the backlog until uvicorn accepts them: no polling
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()
