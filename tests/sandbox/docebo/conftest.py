"""Fixtures of the Docebo sandbox tests, on the small demo world (tests/support/docebo_sandbox.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.sandbox.demo_data import DemoData
from services.sandbox.docebo.app import create_docebo_app
from services.sandbox.docebo.state import DoceboState
from tests.support.docebo_sandbox import get_token, small_demo


@pytest.fixture
def demo() -> DemoData:
    return small_demo()


@pytest.fixture
def state(demo) -> DoceboState:
    return DoceboState.from_demo(demo, client_secret="s3cret", admin_password="pa55word")


@pytest.fixture
def app(state):
    return create_docebo_app(state)


@pytest.fixture
async def anon(app) -> AsyncIterator[httpx.AsyncClient]:
    """A client without a token."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://docebo.test") as c:
        yield c


@pytest.fixture
async def api(app, state) -> AsyncIterator[httpx.AsyncClient]:
    """A client holding a valid Bearer token."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://docebo.test") as c:
        c.headers["Authorization"] = f"Bearer {await get_token(c, state)}"
        yield c
