"""services/core/secrets.py: env overrides, keyring detection, NoKeyringError naming the env var."""

from __future__ import annotations

import keyring
import pytest
from keyring.backends import chainer, fail

from services.core.secrets import (
    SECRET_ENV,
    KeyringSecrets,
    MemorySecrets,
    NoKeyringError,
    SecretStore,
    UnknownSecretError,
    keyring_backend_problem,
)
from tests.support.keyring import DictKeyring


@pytest.fixture
def working_keyring():
    previous = keyring.get_keyring()
    backend = DictKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def test_contract_names_and_env_vars():
    assert SECRET_ENV == {
        "credly_token": "CREDLY_TOKEN",
        "docebo_client_secret": "DOCEBO_CLIENT_SECRET",
        "webhook_secret": "CREDLY_CONSOLE_WEBHOOK_SECRET",
        "smtp_password": "SMTP_PASSWORD",
        "docebo_password": "DOCEBO_PASSWORD",
    }
    assert isinstance(KeyringSecrets(), SecretStore)
    assert isinstance(MemorySecrets(), SecretStore)


def test_failing_backend_is_detected_and_set_names_the_env_var():
    assert isinstance(keyring.get_keyring(), fail.Keyring)  # conftest
    assert keyring_backend_problem() is not None
    secrets = KeyringSecrets()
    assert secrets.get("credly_token") is None
    for name, env in SECRET_ENV.items():
        with pytest.raises(NoKeyringError) as info:
            secrets.set(name, "value")
        assert env in str(info.value)
        assert "value" not in str(info.value).replace("environment variable", "")


def test_chainer_without_backends_counts_as_no_keyring(monkeypatch):
    previous = keyring.get_keyring()
    monkeypatch.setattr(chainer.ChainerBackend, "backends", property(lambda self: []))
    keyring.set_keyring(chainer.ChainerBackend())
    try:
        assert keyring_backend_problem() == "keyring found no backend to chain"
        with pytest.raises(NoKeyringError, match="DOCEBO_CLIENT_SECRET"):
            KeyringSecrets().set("docebo_client_secret", "x")
    finally:
        keyring.set_keyring(previous)


def test_env_var_works_without_keyring(monkeypatch):
    monkeypatch.setenv("CREDLY_TOKEN", "tok-from-env")
    assert KeyringSecrets().get("credly_token") == "tok-from-env"
    assert KeyringSecrets().source("credly_token") == "env"


def test_keyring_round_trip_and_env_precedence(working_keyring, monkeypatch):
    assert keyring_backend_problem() is None
    secrets = KeyringSecrets()
    secrets.set("smtp_password", "from-keyring")
    assert working_keyring.data == {("credly-console", "smtp_password"): "from-keyring"}
    assert secrets.get("smtp_password") == "from-keyring"
    assert secrets.source("smtp_password") == "keyring"
    monkeypatch.setenv("SMTP_PASSWORD", "from-env")
    assert secrets.get("smtp_password") == "from-env"
    monkeypatch.delenv("SMTP_PASSWORD")
    secrets.delete("smtp_password")
    secrets.delete("smtp_password")  # deleting twice is a no-op
    assert secrets.get("smtp_password") is None


def test_unknown_names_are_refused():
    with pytest.raises(UnknownSecretError, match="credly_token"):
        KeyringSecrets().get("password")
    with pytest.raises(UnknownSecretError):
        MemorySecrets().set("nope", "x")


def test_memory_secrets_and_repr_hides_values():
    secrets = MemorySecrets({"credly_token": "abc"})
    assert secrets.get("credly_token") == "abc"
    secrets.delete("credly_token")
    assert secrets.get("credly_token") is None
    secrets.set("webhook_secret", "hush")
    assert "hush" not in repr(secrets)
