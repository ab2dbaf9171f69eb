"""`credly-console demo`: both sandboxes, `serve` and simulated learner activity on loopback.

Without `--headless` it opens the console on the demo (a separate database and in-memory
secrets: the user's own configuration, database and keyring are never touched). With
`--headless` it logs the activity and a status line instead (tmux checks, benchmarks).
"""

from __future__ import annotations

import click

from console.cli.common import fail


@click.command("demo")
@click.option("--headless", is_flag=True, help="No console: log the simulated activity and the sync status.")
@click.option("--size", type=click.Choice(["small", "medium", "large"]), default="small", show_default=True,
              help="Demo data set.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the demo data and of the activity.")
@click.option("--interval", type=click.FloatRange(min=0.05), default=3.0, show_default=True,
              help="Seconds between simulated actions (jittered).")
@click.option("--no-activity", is_flag=True, help="Do not simulate learner activity.")
@click.option("--duration", type=click.FloatRange(min=0), default=0.0,
              help="Headless: stop after this many seconds (0 = until Ctrl+C).")
@click.option("--status-every", type=click.FloatRange(min=0.5), default=10.0, show_default=True,
              help="Headless: seconds between status lines.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Keep the demo database here (default: a temp dir removed at exit).")
def demo(headless: bool, size: str, seed: int, interval: float, no_activity: bool, duration: float,
         status_every: float, data_dir: str | None) -> None:
    """Try credly-console on emulated Docebo and Credly, with live events.

    Starts both sandboxes with demo data, the webhook receiver, workers and scheduler on
    loopback, and simulates learners completing courses, certifications being awarded and
    badges being issued by hand, so real-time events flow through the whole product.
    """
    import logging
    import signal
    import sys
    import threading
    import time
    from pathlib import Path

    from console.cli.serve import setup_logging
    from services.demo import DemoEnvironment, DemoOptions

    options = DemoOptions(size=size, seed=seed, interval_s=interval, activity=not no_activity,
                          data_dir=Path(data_dir) if data_dir else None)
    if headless:
        setup_logging("warning")
        logging.getLogger("credly_console.serve").setLevel(logging.INFO)
    stop = threading.Event()

    def on_signal(signum, frame) -> None:  # noqa: ARG001
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        with DemoEnvironment(options) as env:
            if not headless:
                _open_console(env)
                return
            click.echo(f"demo: receiver {env.runtime.base_url}; database {env.db_path}; Ctrl+C to stop")
            for line in list(env.activity):
                click.echo(str(line))
            env.subscribe(lambda line: click.echo(str(line)))
            started = time.monotonic()
            next_status = started + status_every
            try:
                while not stop.is_set():
                    if duration and time.monotonic() - started >= duration:
                        break
                    stop.wait(0.2)
                    if time.monotonic() >= next_status:
                        click.echo(_status(env))
                        next_status += status_every
            except KeyboardInterrupt:
                pass
            click.echo(_status(env))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        fail(f"cannot start the demo: {exc}")
    finally:
        signal.signal(signal.SIGTERM, previous)
    sys.stdout.flush()


def _status(env) -> str:
    from services.store import inbox
    from services.store.db import Store

    with Store(env.db_path) as store:
        c = inbox.counts(store)
        templates = store.conn.execute("SELECT COUNT(*) FROM badge_templates").fetchone()[0]
        runs = store.conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    sb = env.sandboxes
    badges = sum(1 for b in sb.credly.state.badges.values() if b.state in ("pending", "accepted"))
    trainings = len(sb.docebo.state.external_trainings)
    return (f"status: inbox done {c['done']}, backlog {c['backlog']}, failed {c['failed']}, skipped {c['skipped']}; "
            f"runs {runs}; templates {templates}; Credly badges {badges}; Docebo external trainings {trainings}")


def demo_context(env):
    """The console's context on the demo: its config, in-memory secrets, database and sandbox
    clients. The user's `[keymap]` and `[ui] theme` apply (read from their config file, if it
    reads); nothing is ever saved to that file (`config_path=None`)."""
    from services.appcontext import AppContext
    from services.core.config import ConfigError, load_config

    try:
        own = load_config()
    except (ConfigError, OSError):
        own = None
    if own is not None:
        env.config.keymap = dict(own.keymap)
        env.config.ui.theme = own.ui.theme
    return AppContext(
        config=env.config,
        secrets=env.secrets,
        database_path=env.db_path,
        config_path=None,
        credly_factory=env.credly_client,
        docebo_factory=env.docebo_client,
        label="demo",
    )


def _open_console(env) -> None:
    try:
        from console.app import run_console
    except ImportError:
        fail("the console is not part of this build yet; run `credly-console demo --headless`")
    run_console(demo_context(env))
