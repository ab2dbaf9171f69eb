"""CLI for where things live and for secrets: `locate`, `config show`, `secrets status|set|delete`.

Secrets are read from the environment first, then the OS keyring (services.core.secrets); `secrets set`
stores one in the keyring with a hidden prompt, never echoing it, and on a machine without a
keyring backend says so and names the environment variable to use instead.
"""

from __future__ import annotations

import sys

import click

from console.cli.common import echo_json, echo_table, fail, handle_errors

SECRET_CHOICE = click.Choice(
    ["credly_token", "docebo_client_secret", "webhook_secret", "smtp_password", "docebo_password"]
)


@click.command("locate")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def locate(as_json: bool) -> None:
    """Print where the config file and the database are (and the keyring in use)."""
    from services.core.config import CONFIG_ENV, DB_ENV, config_path, database_path
    from services.core.secrets import keyring_backend_name, keyring_backend_problem

    cfg, db = config_path(), database_path()
    problem = keyring_backend_problem()
    info = {
        "config": str(cfg),
        "config_exists": cfg.exists(),
        "config_env": CONFIG_ENV,
        "database": str(db),
        "database_exists": db.exists(),
        "database_env": DB_ENV,
        "keyring": keyring_backend_name(),
        "keyring_usable": problem is None,
    }
    if as_json:
        echo_json(info)
        return
    click.echo(f"config:   {cfg}{'' if info['config_exists'] else '  (not created yet: defaults apply)'}")
    click.echo(f"database: {db}{'' if info['database_exists'] else '  (created on first use)'}")
    click.echo(f"keyring:  {info['keyring']}{'' if problem is None else '  (not usable: ' + problem + ')'}")


@click.group("config")
def config_group() -> None:
    """The configuration file (see `credly-console locate` for its path)."""


@config_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of TOML.")
@handle_errors
def config_show(as_json: bool) -> None:
    """Check the config file and print the configuration in effect (defaults filled in).

    Exits with status 2 and names the key and the expected form if the file is invalid.
    Secrets are never in this file; see `credly-console secrets status`.
    """
    import tomli_w

    from services.core.config import config_path, load_config

    cfg = load_config()
    if as_json:
        echo_json(cfg.to_dict())
        return
    click.echo(f"# {config_path()}")
    click.echo(tomli_w.dumps(cfg.to_dict()), nl=False)


@click.group("secrets")
def secrets_group() -> None:
    """Secrets: Credly token, Docebo client secret, webhook secret, SMTP password, Docebo password.

    \b
    Each is read from its environment variable first, then from the OS keyring:
      credly_token          CREDLY_TOKEN
      docebo_client_secret  DOCEBO_CLIENT_SECRET
      webhook_secret        CREDLY_CONSOLE_WEBHOOK_SECRET
      smtp_password         SMTP_PASSWORD
      docebo_password       DOCEBO_PASSWORD
    They are never written to the config file, the database or a log.
    """


@secrets_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def secrets_status(as_json: bool) -> None:
    """Show which secrets are set and where from (never their values)."""
    from services.core.secrets import (
        SECRET_DESCRIPTIONS,
        SECRET_ENV,
        KeyringSecrets,
        keyring_backend_name,
        keyring_backend_problem,
    )

    store = KeyringSecrets()
    problem = keyring_backend_problem()
    rows = [
        {"name": name, "env_var": env, "source": store.source(name) or "not set",
         "description": SECRET_DESCRIPTIONS[name]}
        for name, env in SECRET_ENV.items()
    ]
    if as_json:
        echo_json({"keyring": keyring_backend_name(), "keyring_usable": problem is None, "secrets": rows})
        return
    echo_table(rows, [("name", "NAME"), ("env_var", "ENV VAR"), ("source", "SET FROM"), ("description", "WHAT")])
    if problem is not None:
        click.echo(f"keyring: not usable ({problem}); use the environment variables", err=True)


@secrets_group.command("set")
@click.argument("name", type=SECRET_CHOICE)
@handle_errors
def secrets_set(name: str) -> None:
    """Store the secret NAME in the OS keyring (asked with hidden input, or read from stdin).

    Without a keyring backend (e.g. a headless Linux server) this fails and names the
    environment variable to set instead.
    """
    import os

    from services.core.secrets import SECRET_ENV, KeyringSecrets, NoKeyringError, keyring_backend_problem

    problem = keyring_backend_problem()
    if problem is not None:  # say so before asking for the secret
        raise NoKeyringError(name, problem)
    interactive = sys.stdin.isatty()
    value = click.prompt(f"{name}", hide_input=True, confirmation_prompt=interactive,
                         default="", show_default=False).strip()
    if not value:
        fail(f"no value given; the {name} was not changed")
    KeyringSecrets().set(name, value)
    click.echo(f"{name} stored in the OS keyring")
    if os.environ.get(SECRET_ENV[name]):
        click.echo(f"note: {SECRET_ENV[name]} is set in this environment and takes precedence", err=True)


@secrets_group.command("delete")
@click.argument("name", type=SECRET_CHOICE)
@handle_errors
def secrets_delete(name: str) -> None:
    """Remove the secret NAME from the OS keyring (environment variables are not touched)."""
    from services.core.secrets import KeyringSecrets

    KeyringSecrets().delete(name)
    click.echo(f"{name} removed from the OS keyring")
