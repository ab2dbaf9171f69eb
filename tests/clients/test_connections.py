"""services/clients/factory.py: clients built from AppConfig + SecretStore."""

from __future__ import annotations

import httpx
import pytest

from services.clients.factory import (
    DEFAULT_DOCEBO_PER_HOUR,
    build_credly,
    build_docebo,
    reset_shared_limiters,
)
from services.core.config import AppConfig, load_config, save_config
from services.core.secrets import KeyringSecrets, MemorySecrets


@pytest.fixture(autouse=True)
def fresh_limiters():
    reset_shared_limiters()
    yield
    reset_shared_limiters()


async def test_clients_built_from_a_saved_config_reach_the_sandboxes(credly_world, docebo_world,
                                                                    fast_policy):
    cstate, capp = credly_world
    dstate, dapp = docebo_world
    cfg = AppConfig()
    cfg.credly.base_url = "http://credly.sandbox.test/v1"
    cfg.credly.organization_id = cstate.organization_id
    cfg.docebo.base_url = "http://docebo.sandbox.test"
    cfg.docebo.client_id = dstate.client_id
    save_config(cfg)
    cfg = load_config()
    secrets = MemorySecrets({"credly_token": cstate.token,
                             "docebo_client_secret": dstate.client_secret})
    credly = build_credly(cfg, secrets, transport=httpx.ASGITransport(app=capp), policy=fast_policy)
    docebo = build_docebo(cfg, secrets, transport=httpx.ASGITransport(app=dapp), policy=fast_policy)
    assert (await credly.test_connection()).ok
    assert (await docebo.test_connection()).ok
    assert cstate.token not in repr(credly) and dstate.client_secret not in repr(docebo)
    await credly.aclose()
    await docebo.aclose()


async def test_secrets_come_from_the_environment_through_keyring_secrets(monkeypatch, credly_world,
                                                                        fast_policy):
    state, app = credly_world
    monkeypatch.setenv("CREDLY_TOKEN", state.token)
    cfg = AppConfig()
    cfg.credly.base_url = "http://credly.sandbox.test/v1"
    cfg.credly.organization_id = state.organization_id
    credly = build_credly(cfg, KeyringSecrets(), transport=httpx.ASGITransport(app=app),
                          policy=fast_policy)
    assert (await credly.test_connection()).ok
    await credly.aclose()


async def test_missing_secrets_build_a_client_whose_test_says_what_is_missing():
    cfg = AppConfig()
    cfg.credly.organization_id = "org"
    cfg.docebo.base_url = "https://acme.docebosaas.com"
    cfg.docebo.client_id = "cid"
    credly = build_credly(cfg, MemorySecrets())
    docebo = build_docebo(cfg, MemorySecrets())
    assert "CREDLY_TOKEN" in (await credly.test_connection()).message
    assert "DOCEBO_CLIENT_SECRET" in (await docebo.test_connection()).message
    cfg.docebo.grant = "password"
    cfg.docebo.username = "admin"
    pw = build_docebo(cfg, MemorySecrets({"docebo_client_secret": "s-123456"}))
    assert "DOCEBO_PASSWORD" in (await pw.test_connection()).message
    for c in (credly, docebo, pw):
        await c.aclose()


def test_rate_limits_come_from_the_config_and_are_shared_per_api():
    cfg = AppConfig()
    cfg.docebo.base_url = "https://acme.docebosaas.com"
    secrets = MemorySecrets()
    a = build_docebo(cfg, secrets)
    b = build_docebo(cfg, secrets)
    assert a.limiter is b.limiter  # one bucket per API in the process (the limit is per IP)
    assert a.limiter.rate == pytest.approx(cfg.docebo.rate_limit_per_hour / 3600)
    assert a.limiter.burst == cfg.docebo.burst
    assert DEFAULT_DOCEBO_PER_HOUR == 1000 == AppConfig().docebo.rate_limit_per_hour

    cfg.docebo.rate_limit_per_hour = 0
    assert not build_docebo(cfg, secrets).limiter.limited

    credly = build_credly(cfg, secrets)
    assert not credly.limiter.limited  # Credly: no limit unless configured
    cfg.credly.rate_limit_per_minute = 120
    limited = build_credly(cfg, secrets)
    assert limited.limiter.limited and limited.limiter.rate == pytest.approx(2.0)
    assert limited.limiter.remaining() == 120
