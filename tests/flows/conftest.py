"""Fixtures of the flow tests; the world itself lives in tests/flows/world.py."""

from __future__ import annotations

from typing import Any

import pytest

from services.sandbox.demo_data import DemoData
from tests.flows.world import World, base_data


@pytest.fixture
async def make_world(store):
    worlds: list[World] = []

    def factory(data: DemoData | None = None, *, configure: bool = True, **kw: Any) -> World:
        w = World(store, data or base_data(), **kw)
        if configure:
            w.configure()
        worlds.append(w)
        return w

    yield factory
    for w in worlds:
        await w.aclose()


@pytest.fixture
async def world(make_world):
    return make_world()
