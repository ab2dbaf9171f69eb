"""Serve the sandbox apps with uvicorn on loopback (tests, the demo, benchmarks, the CLI)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import uvicorn

from services.sandbox.common import install_drop_log_filter


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: whoever runs the sandboxes decides when to stop."""

    def capture_signals(self):  # type: ignore[override]
        return contextlib.nullcontext()


@dataclass
class ServedApp:
    host: str
    port: int
    server: uvicorn.Server
    task: asyncio.Task

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


async def start_app(app: Any, host: str = "127.0.0.1", port: int = 0) -> ServedApp:
    """Start ``app`` with uvicorn in the running loop. The socket is bound and listening before
    this returns, so the real port is known and early connections wait in the backlog."""
    install_drop_log_filter()
    sock = _listening_socket(host, port)
    real_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
        timeout_keep_alive=5,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name=f"uvicorn:{real_port}")
    return ServedApp(host, real_port, server, task)


async def stop_app(served: ServedApp) -> None:
    served.server.should_exit = True
    try:
        await served.task
    except SystemExit as exc:  # uvicorn exits on lifespan startup failure
        raise RuntimeError(f"sandbox server on port {served.port} failed to start") from exc


@contextlib.asynccontextmanager
async def serve_app(app: Any, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[ServedApp]:
    """``async with serve_app(app) as served: served.origin`` — one app on a real server."""
    served = await start_app(app, host, port)
    try:
        yield served
    finally:
        await stop_app(served)
