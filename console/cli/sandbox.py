"""``credly-console sandbox``: serve the Credly and Docebo sandboxes until interrupted.

The first line on stdout is one JSON object with what a client needs, flushed at once (scripts
read it): ``{"credly": {"base_url", "organization_id", "token"}, "docebo": {"base_url",
"client_id", "client_secret"}}``. Human-readable lines follow. Heavy imports happen inside the
command so ``credly-console --help`` stays light.
"""

from __future__ import annotations

import click


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--credly-port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Credly sandbox port (0 = any free port).")
@click.option("--docebo-port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Docebo sandbox port (0 = any free port).")
@click.option("--size", type=click.Choice(["small", "medium", "large"]), default="small", show_default=True,
              help="Demo data set to serve.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the demo data and of the faults.")
@click.option("--latency-ms", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Added latency per call, in milliseconds.")
@click.option("--jitter-ms", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Random extra latency per call, up to this many milliseconds.")
@click.option("--fail-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of calls answered with a 5xx.")
@click.option("--drop-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of calls processed and then cut without a response.")
@click.option("--rate-limit", is_flag=True,
              help="Answer 429 with Retry-After past 100 calls a minute (Credly) and 1,000 an hour (Docebo).")
@click.option("--credly-webhook", metavar="URL", default=None, help="POST Credly event notices here.")
@click.option("--docebo-webhook", metavar="URL", default=None, help="POST Docebo webhook deliveries here.")
def sandbox(
    host: str,
    credly_port: int,
    docebo_port: int,
    size: str,
    seed: int,
    latency_ms: float,
    jitter_ms: float,
    fail_rate: float,
    drop_rate: float,
    rate_limit: bool,
    credly_webhook: str | None,
    docebo_webhook: str | None,
) -> None:
    """Serve local emulators of the Credly and Docebo APIs until interrupted (Ctrl+C).

    Prints one JSON line with base URLs and credentials first, then log lines.
    Control endpoints live under /_sandbox/ on each server.
    """
    import asyncio

    from services.sandbox.runner import SandboxOptions

    options = SandboxOptions(
        host=host,
        credly_port=credly_port,
        docebo_port=docebo_port,
        size=size,
        seed=seed,
        latency_ms=latency_ms,
        jitter_ms=jitter_ms,
        fail_rate=fail_rate,
        drop_rate=drop_rate,
        rate_limit=rate_limit,
        credly_webhook=credly_webhook,
        docebo_webhook=docebo_webhook,
    )
    try:
        asyncio.run(_serve(options))
    except OSError as exc:
        click.echo(f"error: cannot serve the sandboxes on {host}: {exc.strerror or exc}", err=True)
        raise SystemExit(1) from None
    except KeyboardInterrupt:  # a second Ctrl+C during shutdown
        pass


async def _serve(options) -> None:
    import asyncio
    import json
    import signal
    import sys

    from services.sandbox.runner import run_sandboxes

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix
            pass

    async with run_sandboxes(options) as sb:
        sys.stdout.write(json.dumps(sb.connection_info()) + "\n")
        sys.stdout.flush()
        state = sb.credly.state
        lines = [
            f"Credly sandbox: {sb.credly.base_url}  organization {sb.credly.organization_id}  "
            f"({len(state.templates)} templates, {len(state.badges)} badges)",
        ]
        if sb.docebo is not None:
            lines.append(f"Docebo sandbox: {sb.docebo.base_url}  client id {sb.docebo.client_id}")
        else:
            lines.append("Docebo sandbox: not available in this build")
        lines.append(f"Data set: {options.size}, seed {options.seed}. Control endpoints under /_sandbox/.")
        if options.credly_webhook:
            lines.append(f"Credly notices go to {options.credly_webhook}")
        if options.docebo_webhook:
            lines.append(f"Docebo deliveries go to {options.docebo_webhook}")
        lines.append("Press Ctrl+C to stop.")
        for line in lines:
            print(line, flush=True)
        await stop.wait()
        print("Stopping the sandboxes.", flush=True)
