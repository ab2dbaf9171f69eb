"""Secrets (issue 8; common.md "never leak a token"): after a full demo run, no token or secret
appears in the database file, the config, the logs or any notification.

The run: `services.demo.DemoEnvironment` headless (both sandboxes, `serve` with its receiver,
workers and scheduler, simulated learner activity, webhooks flowing), plus every batch flow
(`all`) on the demo's database, plus failures provoked on purpose so that error paths write
their notifications and log lines: the Credly token is rotated in the sandbox (every Credly call
is then refused 401), webhooks are posted with a wrong secret and with a malformed body.

The secrets looked for: the Credly token (old and new), the Docebo client secret, every OAuth2
access and refresh token the Docebo sandbox handed out, the webhook secret and an SMTP password —
raw, and as the Basic-auth base64 a client would send. The places: the SQLite file with its WAL
and shared-memory files, the config file the demo's configuration saves to, every log record of
every logger at DEBUG (and any *.log file under the data dir), and every notification with the
mail it would be sent as.

Log records of the sandboxes' own threads are left out: they play Docebo and Credly, and their
webhook sender logs the receiver URL it posts to, which carries the webhook secret by design
(W1) — in production that sender is Docebo or Credly, not this program.
"""

from __future__ import annotations

import base64
import logging
import threading

import pytest

from services.core.config import save_config
from services.demo import DemoEnvironment, DemoOptions
from services.store.db import Store
from tests.serve.serve_helpers import until

pytestmark = pytest.mark.e2e

SANDBOX_THREADS = ("sandboxes",)  # services/sandbox/runner.py SandboxThread


class Everything(logging.Handler):
    """Every record of every logger, formatted with its exception, and the thread it came from."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[str, str, str]] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception as exc:  # a record that cannot be formatted is a finding too
            text = f"UNFORMATTABLE {record.msg!r} {record.args!r}: {exc}"
        self.lines.append((record.threadName or threading.current_thread().name, record.name, text))


@pytest.fixture
def all_logs():
    handler = Everything()
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


async def _post(url: str, body: bytes, method: str = "POST") -> int:
    """The test playing Docebo / the admin: urllib, which logs nothing, so the only log records
    are the product's (an httpx client here would log the secret URL it was given)."""
    import asyncio
    import urllib.error
    import urllib.request

    def send() -> int:
        req = urllib.request.Request(url, data=body, method=method, headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as exc:
            return exc.code

    return await asyncio.to_thread(send)


def _variants(secret: str) -> set[bytes]:
    return {secret.encode(), base64.b64encode(f"{secret}:".encode()), base64.b64encode(secret.encode())}


async def test_no_secret_in_database_config_logs_or_notifications_after_a_demo_run(tmp_path, all_logs):
    from services.flows import FlowContext, run_flow
    from services.serve.mailer import compose, format_notification

    data_dir = tmp_path / "demo"
    async with DemoEnvironment(DemoOptions(interval_s=0.1, seed=5, data_dir=data_dir)) as env:
        env.secrets.set("smtp_password", "smtp-Pa55word-for-the-leak-test")
        sb = env.sandboxes
        old_credly_token = sb.credly.token

        def lively() -> bool:
            with Store(env.db_path) as store:
                flows = {r[0] for r in store.conn.execute("SELECT flow FROM runs WHERE status = 'succeeded'")}
                done = store.conn.execute("SELECT count(*) FROM inbox WHERE status = 'done'").fetchone()[0]
            return {"templates", "dropdown", "course_completion"} <= flows and done >= 3

        await until(lively, timeout=60, interval=0.1, what="F1, F2 and real-time completions in the demo")

        # every batch flow on the demo's database, with the clients the console would use
        credly, docebo = env.credly_client(), env.docebo_client()
        try:
            with Store(env.db_path) as store:
                summary = await run_flow("all", FlowContext(store, credly, docebo), trigger="test")
            assert summary.status == "succeeded", summary.reason
            # failures on purpose: the Credly token rotated in the sandbox → 401 on every Credly call
            origin = sb.credly.base_url.rsplit("/v1", 1)[0]
            assert await _post(f"{origin}/_sandbox/token", b'{"token": "rotated-Credly-token-0123456789"}', "PUT") == 200
            with Store(env.db_path) as store:
                failed = await run_flow("templates", FlowContext(store, credly, docebo), trigger="test")
            assert failed.status == "failed" and "401" in failed.reason
            # refused webhooks: a wrong secret on either endpoint, a malformed body
            base = env.runtime.base_url
            for source in ("docebo", "credly"):
                assert await _post(f"{base}/webhooks/{source}/not-the-secret", b"{}") == 403
            assert await _post(env.urls["docebo"], b"{not json") == 400
        finally:
            await credly.aclose()
            await docebo.aclose()

        secrets = {
            "credly token": old_credly_token,
            "rotated credly token": "rotated-Credly-token-0123456789",
            "docebo client secret": sb.docebo.client_secret,
            "webhook secret": env.secrets.get("webhook_secret"),
            "smtp password": "smtp-Pa55word-for-the-leak-test",
        }
        state = sb.docebo.state
        for n, value in enumerate(list(state.tokens) + list(state.refresh_tokens)):
            secrets[f"docebo oauth token {n}"] = value
        assert len(secrets) > 5, "the Docebo sandbox handed out no token: the run did not reach Docebo"
        config_file = tmp_path / "demo-config.toml"
        save_config(env.config, config_file)
        db_path = env.db_path

    assert all(s for s in secrets.values())
    # the database file, with its WAL and shared-memory files, byte for byte
    stores = {p.name: p.read_bytes() for p in data_dir.iterdir() if p.name.startswith(db_path.name)}
    assert db_path.name in stores
    # the config (and the user's config path, if anything was ever written there)
    configs = {"demo config": config_file.read_bytes()}
    # the logs: every record of the product's threads, and any log file
    product_lines = [(thread, name, text) for thread, name, text in all_logs.lines if thread not in SANDBOX_THREADS]
    assert len(product_lines) > 100, "hardly any log record was captured"
    assert any("refused" in text for *_, text in product_lines)  # the receiver's refusal lines are in
    logs = {"log records": "\n".join(text for *_, text in product_lines).encode()}
    for f in data_dir.rglob("*.log"):
        logs[f.name] = f.read_bytes()
    # every notification, and the mail it becomes
    with Store(db_path) as store:
        notes = [dict(r) for r in store.db.query("SELECT * FROM notifications ORDER BY id")]
    assert any(n["kind"] == "webhook_rejected" for n in notes), [n["kind"] for n in notes]
    assert any("401" in (n["body"] or "") + (n["title"] or "") + str(n.get("context") or "") for n in notes)
    mail = compose(notes, sender="credly-console@demo.example", recipient="lms-admin@demo.example").as_bytes()
    texts = {"notifications": repr(notes).encode() + "\n".join(format_notification(n) for n in notes).encode(),
             "notification mail": mail}

    leaks = [
        f"{what} in {where}"
        for where, blob in {**stores, **configs, **logs, **texts}.items()
        for what, secret in secrets.items()
        if any(v in blob for v in _variants(secret))
    ]
    assert leaks == []
