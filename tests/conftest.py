"""Shared fixtures. Every test runs with its own config file, database and no keyring, so a
developer's real settings and secrets are never touched."""

from __future__ import annotations

import pytest

from services.store.db import Store


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Point config and database at a temp dir and disable the OS keyring for every test."""
    monkeypatch.setenv("CREDLY_CONSOLE_CONFIG", str(tmp_path / "config" / "config.toml"))
    monkeypatch.setenv("CREDLY_CONSOLE_DB", str(tmp_path / "data" / "credly-console.db"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    for name in ("CREDLY_TOKEN", "DOCEBO_CLIENT_SECRET", "CREDLY_CONSOLE_WEBHOOK_SECRET", "SMTP_PASSWORD",
                 "DOCEBO_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    yield tmp_path


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "store.db")
    yield s
    s.close()


def pytest_collection_modifyitems(config, items):
    """Tests marked `serial` (SIGKILL, subprocess and timing-sensitive ones) share one xdist group,
    so they run one after another on one worker instead of two at a time (`--dist loadgroup`)."""
    for item in items:
        if item.get_closest_marker("serial") is not None:
            item.add_marker(pytest.mark.xdist_group("serial"))
