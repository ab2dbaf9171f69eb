"""Fixtures of the Credly sandbox tests, on the known world of tests/support/credly_sandbox.py."""

from __future__ import annotations

import pytest

from services.sandbox.credly.app import create_credly_app
from tests.support.credly_sandbox import FixedClock, client_for, make_state


@pytest.fixture
def clock():
    return FixedClock()


@pytest.fixture
def credly_state(clock):
    return make_state(clock=clock)


@pytest.fixture
def credly_app(credly_state):
    return create_credly_app(credly_state)


@pytest.fixture
async def credly(credly_app):
    """An httpx client on the in-process Credly sandbox (Basic auth with the token)."""
    async with client_for(credly_app) as client:
        yield client
