"""Docebo sandbox: OAuth2 token endpoint and Bearer tokens (api/docebo.md §1.2; issue 3)."""

from __future__ import annotations

import base64

import pytest

from tests.support.docebo_sandbox import get_token


def _cc(state, **over):
    body = {"grant_type": "client_credentials", "client_id": state.client_id, "client_secret": state.client_secret}
    body.update(over)
    return body


def _assert_token(body: dict, *, refresh: bool) -> None:
    assert set(body) >= {"access_token", "expires_in", "token_type", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "api"
    assert len(body["access_token"]) == 40 and int(body["access_token"], 16) >= 0
    assert ("refresh_token" in body) is refresh


async def test_client_credentials_form_encoded(anon, state):
    r = await anon.post("/oauth2/token", data=_cc(state))
    assert r.status_code == 200
    _assert_token(r.json(), refresh=False)


async def test_client_credentials_multipart(anon, state):
    r = await anon.post("/oauth2/token", files={k: (None, v) for k, v in _cc(state, scope="api").items()})
    assert r.status_code == 200, r.text
    _assert_token(r.json(), refresh=False)


async def test_client_credentials_json(anon, state):
    r = await anon.post("/oauth2/token", json=_cc(state))
    assert r.status_code == 200
    _assert_token(r.json(), refresh=False)


async def test_client_credentials_in_http_basic_header(anon, state):
    basic = base64.b64encode(f"{state.client_id}:{state.client_secret}".encode()).decode()
    r = await anon.post("/oauth2/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"})
    assert r.status_code == 200
    _assert_token(r.json(), refresh=False)


async def test_password_grant_gives_refresh_token_that_works(anon, state):
    body = _cc(state, grant_type="password", username=state.admin_username, password=state.admin_password)
    r = await anon.post("/oauth2/token", files={k: (None, v) for k, v in body.items()})
    assert r.status_code == 200, r.text
    tok = r.json()
    _assert_token(tok, refresh=True)
    r2 = await anon.post("/oauth2/token", data=_cc(state, grant_type="refresh_token", refresh_token=tok["refresh_token"]))
    assert r2.status_code == 200
    assert r2.json()["access_token"] != tok["access_token"]


@pytest.mark.parametrize(
    "over, status, error",
    [
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "nobody"}, 401, "invalid_client"),
        ({"client_id": ""}, 400, "invalid_request"),
        ({"grant_type": ""}, 400, "invalid_request"),
        ({"grant_type": "authorization_code"}, 400, "unsupported_grant_type"),
        ({"grant_type": "password", "username": "sandbox.admin", "password": "nope"}, 400, "invalid_grant"),
        ({"grant_type": "password", "username": "ghost", "password": "pa55word"}, 400, "invalid_grant"),
        ({"grant_type": "password"}, 400, "invalid_request"),
        ({"grant_type": "refresh_token", "refresh_token": "abc"}, 400, "invalid_grant"),
    ],
)
async def test_token_errors(anon, state, over, status, error):
    r = await anon.post("/oauth2/token", data=_cc(state, **over))
    assert r.status_code == status
    body = r.json()
    assert body["error"] == error
    assert body["error_description"]
    assert "access_token" not in body


async def test_token_error_for_malformed_json(anon):
    r = await anon.post("/oauth2/token", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"


async def test_grant_not_enabled_for_client_is_unauthorized_client(anon, state):
    state.add_client("cc-only", "x", grants=["client_credentials"])
    r = await anon.post("/oauth2/token", data={"grant_type": "password", "client_id": "cc-only", "client_secret": "x",
                                               "username": state.admin_username, "password": state.admin_password})
    assert r.status_code == 400
    assert r.json()["error"] == "unauthorized_client"


@pytest.mark.parametrize(
    "header, message_part",
    [
        (None, "without an access token"),
        ("Bearer", "without an access token"),
        ("Basic abc", "without an access token"),
        ("Bearer 0000000000000000000000000000000000000000", "invalid"),
    ],
)
async def test_api_rejects_missing_or_unknown_token(anon, header, message_part):
    headers = {"Authorization": header} if header else {}
    r = await anon.get("/manage/v1/user", headers=headers)
    assert r.status_code == 401
    body = r.json()
    assert body == {"name": "Unauthorized", "message": body["message"], "code": 0, "status": 401}
    assert message_part in body["message"]
    assert r.headers["www-authenticate"].startswith("Bearer")


async def test_token_expires_after_its_lifetime(anon, state):
    now = [1_000_000.0]
    state.clock = lambda: now[0]
    state.token_lifetime_s = 60
    token = await get_token(anon, state)
    headers = {"Authorization": f"Bearer {token}"}
    assert (await anon.get("/manage/v1/user", headers=headers)).status_code == 200
    now[0] += 59
    assert (await anon.get("/manage/v1/user", headers=headers)).status_code == 200
    now[0] += 1
    r = await anon.get("/manage/v1/user", headers=headers)
    assert r.status_code == 401
    assert "expired" in r.json()["message"]
    # a new token works again
    fresh = await get_token(anon, state)
    assert (await anon.get("/manage/v1/user", headers={"Authorization": f"Bearer {fresh}"})).status_code == 200


async def test_token_lifetime_is_configurable_through_control_endpoint(anon, state):
    r = await anon.put("/_sandbox/config", json={"token_lifetime_s": 5})
    assert r.json()["token_lifetime_s"] == 5
    r = await anon.post("/oauth2/token", data=_cc(state))
    assert r.json()["expires_in"] == 5
    assert (await anon.put("/_sandbox/config", json={"token_lifetime_s": 0})).status_code == 400


async def test_control_endpoint_expires_every_token_now(api, anon):
    assert (await api.get("/manage/v1/user")).status_code == 200
    r = await anon.post("/_sandbox/tokens/expire")
    assert r.json()["data"]["expired"] == 1
    r = await api.get("/manage/v1/user")
    assert r.status_code == 401
    assert "expired" in r.json()["message"]
