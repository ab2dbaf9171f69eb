"""The listening socket and the uvicorn server shared by `serve`'s receiver and the sandboxes.

Both bind their socket before the server starts, so port 0's real port is known at once and
early connections wait in the backlog.
"""

from __future__ import annotations

import contextlib
import socket

import uvicorn


def listening_socket(host: str, port: int, *, backlog: int) -> socket.socket:
    """A non-blocking TCP socket bound to (host, port) and listening.

    proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto says
    TCP, and without it every keep-alive response (head and body written separately) waits
    ~40 ms for the client's delayed ACK (Nagle). NODELAY on the listener is inherited too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: whoever runs it decides when it stops
    (`serve` installs its own handlers; the sandboxes stop with their owner)."""

    def capture_signals(self):
        return contextlib.nullcontext()
