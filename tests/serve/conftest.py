"""Fixtures of the serve suite (helpers live in serve_helpers.py)."""

from __future__ import annotations

import pytest
from serve_helpers import RecordingHandler, SmtpServer, free_port, self_signed


@pytest.fixture
def smtp_server_factory():
    """Start aiosmtpd servers: ``factory(tls=None|"starttls"|"implicit", login=(user, password)|None)``."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    controllers = []

    def start(tls: str | None = None, login: tuple[str, str] | None = None) -> SmtpServer:
        server = SmtpServer("127.0.0.1", free_port())
        kwargs: dict = {}
        server_ctx = None
        if tls:
            server_ctx, server.client_context = self_signed()
        if tls == "starttls":
            kwargs.update(tls_context=server_ctx, require_starttls=True)
        if login:
            def authenticator(smtp, session, envelope, mechanism, auth_data):
                if (auth_data.login.decode(), auth_data.password.decode()) == login:
                    server.logins.append(auth_data.login.decode())
                    return AuthResult(success=True)
                return AuthResult(success=False, handled=False, message="535 5.7.8 Authentication credentials invalid")

            kwargs.update(authenticator=authenticator, auth_require_tls=False)
        controller = Controller(
            RecordingHandler(server),
            hostname="127.0.0.1",
            port=server.port,
            ssl_context=server_ctx if tls == "implicit" else None,
            **kwargs,
        )
        controller.start()
        controllers.append(controller)
        return server

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def smtp_server(smtp_server_factory) -> SmtpServer:
    return smtp_server_factory()
