"""The sync flows of SPEC §2, runnable from the console, the CLI, the scheduler and the webhook
worker. One implementation serves them all (DESIGN.md): a flow is an async function over a
`FlowContext` (store + Credly client + Docebo client) that reports through `Callbacks`.

Design notes: docs/design/flows.md
"""

from __future__ import annotations

from typing import Any

from services.core.flow_types import Callbacks, Cancelled, LogLine, RunSummary
from services.flows import rules
from services.flows.base import FlowContext, FlowFailed, Job, execute

__all__ = [
    "Callbacks",
    "FlowContext",
    "FlowFailed",
    "LogLine",
    "RunSummary",
    "FLOW_NAMES",
    "check_mappings",
    "handle_badge_event",
    "handle_certification_event",
    "handle_course_completion",
    "handle_template_event",
    "run_flow",
]

FLOW_NAMES: tuple[str, ...] = tuple(rules.BATCH_FLOWS)


def _body(key: str):
    if key == "templates":
        from services.flows.templates import sync_templates

        return sync_templates
    if key == "dropdown":
        from services.flows.dropdown import sync_dropdown

        return sync_dropdown
    if key == "docebo_to_credly":
        from services.flows.docebo_to_credly import batch_docebo_to_credly

        return batch_docebo_to_credly
    if key == "credly_to_docebo":
        from services.flows.credly_to_docebo import batch_credly_to_docebo

        return batch_credly_to_docebo
    raise ValueError(f"no batch body for {key}")


async def run_flow(
    name: str,
    ctx: FlowContext,
    *,
    dry_run: bool = False,
    trigger: str = "cli",
    callbacks: Callbacks | None = None,
    full: bool = False,
) -> RunSummary:
    """Run a batch flow by name (`FLOW_NAMES`) and return its summary.

    F7 and F6 are incremental when they can be (only what changed since their last good run,
    services/flows/incremental.py: the scheduler's runs, and any other run unless a full one is
    due); `full=True` makes them read everything (`--full`). The summary's `mode` says which.

    `all` runs templates, dropdown, docebo-to-credly and credly-to-docebo one after the other as
    child runs (`parent_run_id`); its counts are the sums of theirs, its status the worst of
    theirs (failed > cancelled > succeeded; skipped children are fine), and it stops early when
    cancelled. A gated-off child (G1) is `skipped`. A dry run of `all` plans each child against
    the tables as they are (a dry F1 does not change T, so F2 and F7 do not see its changes)."""
    key = rules.flow_key(name)
    if key not in rules.BATCH_FLOWS.values():
        raise ValueError(f"{name!r} is not a batch flow; expected one of {', '.join(FLOW_NAMES)}")
    if key != "all":
        return await execute(ctx, key, _body(key), dry_run=dry_run, trigger=trigger, callbacks=callbacks, full=full)

    children: list[RunSummary] = []

    async def body(job: Job) -> None:
        for child in ("templates", "dropdown", "docebo_to_credly", "credly_to_docebo"):
            job.check_cancel()
            job.rec.info(f"running {child}")
            summary = await execute(
                ctx,
                child,
                _body(child),
                dry_run=dry_run,
                trigger=trigger,
                callbacks=callbacks,
                parent_run_id=job.run_id,
                full=full,
            )
            children.append(summary)
            for k, v in summary.counts.items():
                job.rec.count(k, v)
            for a in summary.actions:
                job.rec.actions.append(a)
            job.rec.info(f"{child}: {summary.status}" + (f" ({summary.reason})" if summary.reason else ""))
            if summary.status == "cancelled":
                raise Cancelled()
        failed = [c for c in children if c.status == "failed"]
        if failed:
            raise FlowFailed("; ".join(f"{c.flow} failed: {c.reason}" for c in failed))

    summary = await execute(ctx, "all", body, dry_run=dry_run, trigger=trigger, callbacks=callbacks, batch=False)
    summary.children = children
    return summary


async def _handler(ctx: FlowContext, flow: str, body, *, notify: bool) -> RunSummary:
    return await execute(ctx, flow, body, trigger="webhook", lock=False, batch=False, notify=notify)


async def handle_template_event(ctx: FlowContext, event: dict[str, Any], *, notify: bool = True) -> RunSummary:
    """F1 for one Credly `badge_template.*` notice `{id, organization_id, event_type, occurred_at}`."""
    from services.flows.templates import template_event

    return await _handler(ctx, "template_event", lambda job: template_event(job, event), notify=notify)


async def handle_course_completion(ctx: FlowContext, payload: dict[str, Any], *, notify: bool = True) -> RunSummary:
    """F3 for one Docebo `course.enrollment.completed` payload (`user_id`, `course_id`, ...)."""
    from services.flows.docebo_to_credly import course_completion

    return await _handler(ctx, "course_completion", lambda job: course_completion(job, payload), notify=notify)


async def handle_certification_event(
    ctx: FlowContext, event: str, payload: dict[str, Any], *, notify: bool = True
) -> RunSummary:
    """F4 for one Docebo `certification.awarded|updated|revoked` payload."""
    from services.flows.docebo_to_credly import certification_event

    return await _handler(ctx, "certification", lambda job: certification_event(job, event, payload), notify=notify)


async def handle_badge_event(ctx: FlowContext, event: dict[str, Any], *, notify: bool = True) -> RunSummary:
    """F5 for one Credly `badge.*` notice `{id, organization_id, event_type, occurred_at}`."""
    from services.flows.credly_to_docebo import badge_event

    return await _handler(ctx, "badge_event", lambda job: badge_event(job, event), notify=notify)


async def check_mappings(ctx: FlowContext) -> list[dict[str, Any]]:
    """M3: check every mapping against the live systems; see services.flows.check."""
    from services.flows.check import check_mappings as _check

    return await _check(ctx)
