"""services/core/config.py: paths, defaults, checked values, atomic save (issue 2 "Config")."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.core.config import AppConfig, ConfigError, config_path, database_path, load_config, save_config


def test_paths_follow_the_env_vars(tmp_path):
    assert config_path() == tmp_path / "config" / "config.toml"
    assert database_path() == tmp_path / "data" / "credly-console.db"


def test_paths_default_to_the_platform_dirs(monkeypatch):
    monkeypatch.delenv("CREDLY_CONSOLE_CONFIG")
    monkeypatch.delenv("CREDLY_CONSOLE_DB")
    assert config_path().name == "config.toml" and "credly-console" in config_path().parts
    assert database_path().name == "credly-console.db" and "credly-console" in database_path().parts
    assert config_path().parent != database_path().parent  # config dir vs data dir


def test_missing_file_gives_defaults():
    cfg = load_config()
    assert cfg == AppConfig()
    assert cfg.credly.base_url == "https://api.credly.com/v1"
    assert (cfg.server.host, cfg.server.port) == ("127.0.0.1", 8787)
    assert (cfg.smtp.port, cfg.smtp.starttls, cfg.smtp.tls) == (587, True, False)
    assert (cfg.docebo.grant, cfg.docebo.rate_limit_per_hour) == ("client_credentials", 1000)


def test_issue_example_file_loads(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        '[credly]\nbase_url = "https://api.credly.com/v1"\norganization_id = "org-1"\n'
        '[docebo]\nbase_url = "https://acme.docebosaas.com/"\nclient_id = "cid"\n'
        '[server]\nhost = "127.0.0.1"\nport = 8787\n'
        '[smtp]\nhost = "mail.acme.test"\nport = 587\nusername = "bot"\nstarttls = true\nsender = "bot@acme.test"\n'
        '[keymap]\n"mappings.add" = "a"\n[ui]\ntheme = "nord"\n'
    )
    cfg = load_config(path)
    assert cfg.credly.organization_id == "org-1"
    assert cfg.docebo.base_url == "https://acme.docebosaas.com"  # trailing slash dropped
    assert cfg.smtp.sender == "bot@acme.test"
    assert cfg.keymap == {"mappings.add": "a"}
    assert cfg.ui.theme == "nord"


@pytest.mark.parametrize(
    "text, key, expected",
    [
        ("[server]\nport = \"8787\"\n", "[server] port", "whole number"),
        ("[server]\nport = 70000\n", "[server] port", "0 to 65535"),
        ("[smtp]\nstarttls = \"yes\"\n", "[smtp] starttls", "true or false"),
        ("[docebo]\ngrant = \"implicit\"\n", "[docebo] grant", '"client_credentials" or "password"'),
        ("[credly]\nbase_url = \"api.credly.com\"\n", "[credly] base_url", "http(s) URL"),
        ("[credly]\norganisation_id = \"x\"\n", "[credly] organisation_id", "one of the keys"),
        ("[smtp]\ntls = true\nstarttls = true\n", "[smtp] tls", "at most one"),
        ("[server\nport = 1\n", "(syntax)", "TOML"),
        ("port = 1\n", "port", "inside a section"),
    ],
)
def test_invalid_values_name_file_key_and_expected_form(tmp_path, text, key, expected):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert key in message
    assert expected in message
    assert info.value.key == key


@pytest.mark.parametrize("section, key, env", [("credly", "token", "CREDLY_TOKEN"),
                                               ("docebo", "client_secret", "DOCEBO_CLIENT_SECRET"),
                                               ("docebo", "password", "DOCEBO_PASSWORD"),
                                               ("smtp", "password", "SMTP_PASSWORD")])
def test_secrets_in_the_file_are_refused_and_pointed_elsewhere(tmp_path, section, key, env):
    path = tmp_path / "c.toml"
    path.write_text(f'[{section}]\n{key} = "s3cr3t"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert env in str(info.value)
    assert "s3cr3t" not in str(info.value)


def test_save_then_load_round_trips(tmp_path):
    path = tmp_path / "sub" / "c.toml"
    cfg = AppConfig()
    cfg.credly.organization_id = "org"
    cfg.credly.rate_limit_per_minute = 100
    cfg.server.port = 0
    cfg.keymap["app.quit"] = "ctrl+q"
    save_config(cfg, path)
    assert load_config(path) == cfg
    assert not [p for p in path.parent.iterdir() if p.name != "c.toml"]  # no temp file left


def test_save_defaults_to_config_path_and_never_leaves_half_a_file(monkeypatch):
    save_config(AppConfig())
    original = config_path().read_bytes()
    import services.core.config as config_module

    def broken_dumps(doc):
        raise RuntimeError("disk full")

    monkeypatch.setattr(config_module.tomli_w, "dumps", broken_dumps)
    with pytest.raises(RuntimeError):
        save_config(AppConfig())
    assert config_path().read_bytes() == original
    assert sorted(p.name for p in Path(config_path()).parent.iterdir()) == ["config.toml"]


def test_a_misspelt_section_is_refused_with_a_suggestion(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[sever]\nport = 9000\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert str(path) in text and "[sever]" in text and "did you mean [server]?" in text


def test_rate_limit_per_hour_zero_means_no_client_side_limit(tmp_path):
    from services.clients.factory import build_docebo
    from services.core.secrets import MemorySecrets

    path = tmp_path / "c.toml"
    path.write_text('[docebo]\nbase_url = "https://acme.docebosaas.com"\nrate_limit_per_hour = 0\n', encoding="utf-8")
    cfg = load_config(path)
    assert cfg.docebo.rate_limit_per_hour == 0
    client = build_docebo(cfg, MemorySecrets({}))
    assert client._session.limiter.rate is None  # unlimited (Retry-After pauses still honoured)
