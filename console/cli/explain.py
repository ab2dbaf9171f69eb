"""`credly-console explain LEARNER [--template ID] [--json]`: why did — or didn't — this learner
get this badge (issue 13; the decisions are the flows' own: F3c, O1, L1/O2, G1, S3).

Reference: docs/explain.md
"""

from __future__ import annotations

import click

from console.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, fail, handle_errors, open_store


@click.command("explain")
@click.argument("learner")
@click.option("--template", "template_id", default=None, metavar="ID", help="Only this Credly template id.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (docs/explain.md).")
@handle_errors
def explain(learner: str, template_id: str | None, as_json: bool) -> None:
    """What the product would do now for LEARNER (an e-mail or a Docebo user id), per template,
    and why; and what it did before. Exit 0 when found in Docebo or Credly, 1 when in neither,
    2 on bad input."""
    import asyncio

    from console.cli.sync import _connection_problems
    from services.core.config import ConfigError, load_config
    from services.core.secrets import KeyringSecrets
    from services.flows import explain as explaining

    explaining.parse_learner(learner)  # bad input exits 2 before any call
    if template_id is not None and not template_id.strip():
        fail("--template is empty; give a Credly template id (credly-console templates list)", EXIT_USAGE)
    try:
        config = load_config()
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
        return
    secrets = KeyringSecrets()
    problems = _connection_problems(config, secrets, ("credly", "docebo"))
    if problems:
        fail("cannot read the learner live: " + "; ".join(problems), EXIT_USAGE)
    result = asyncio.run(_explain(config, secrets, learner, template_id))
    click.echo(explaining.dumps(result) if as_json else explaining.render_text(result), nl=not as_json)
    if not result.found:
        click.echo(f"error: {learner!r} is neither a Docebo user nor the recipient of a Credly badge; check the e-mail "
                   "or id (credly-console explain alice@example.com)", err=True)
    raise click.exceptions.Exit(EXIT_OK if result.found else EXIT_FAILURE)


async def _explain(config, secrets, learner: str, template_id: str | None):
    from services.clients.factory import build_credly, build_docebo
    from services.flows import FlowContext
    from services.flows.explain import explain_learner

    credly, docebo = build_credly(config, secrets), build_docebo(config, secrets)
    try:
        with open_store() as store:
            return await explain_learner(FlowContext(store, credly, docebo), learner, template_id=template_id)
    finally:
        await credly.aclose()
        await docebo.aclose()
