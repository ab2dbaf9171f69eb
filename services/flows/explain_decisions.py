"""The seam between `explain` and the flows: one learner's records go through the flows' own
decision code (F3/F4 `ensure_badge`, F5 `apply_badge`) in a dry run whose log lines are captured
instead of stored, so the reason shown is the one a run would log (G1, S3, F3c, O1, L1/O2).

Design notes: docs/explain.md
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from services.flows import badge_apply
from services.flows import credly_to_docebo as c2d
from services.flows import docebo_to_credly as d2c
from services.flows.base import FlowContext, Job
from services.flows.lookups import HeldBadges, Learner
from services.store import ledger
from services.store.settings import SettingsSnapshot

# Flow action → the decision word of `explain --json`.
ACTIONS = {
    "issue_badge": "issue",
    "replace_badge": "replace",
    "revoke_badge": "revoke",
    "create_external_training": "create",
    "create_certification_award": "create",
    "update_external_training": "update",
    "update_certification_award": "update",
    "delete_external_training": "delete",
    "revoke_certification_award": "delete",
}
_RULE_AT_END = re.compile(r"\(([A-Z][0-9][a-z]?)(?:/[A-Z][0-9])?\)\s*$")


@dataclasses.dataclass
class Line:
    level: str
    action: str
    object: str
    message: str


class CapturedRun:
    """Stands in for the RunRecorder of a dry run: keeps the lines, writes nothing."""

    id = 0
    flow = "explain"
    dry_run = True
    retryable = False

    def __init__(self) -> None:
        self.lines: list[Line] = []

    def count(self, key: str, n: int = 1) -> None:
        return None

    def log(self, message: str, *, level: str = "info", action: str = "", object: str = "") -> Line:
        line = Line(level, action, object, message)
        self.lines.append(line)
        return line

    def info(self, message: str, *, object: str = "") -> Line:
        return self.log(message, object=object)

    def warning(self, message: str, *, object: str = "") -> Line:
        return self.log(message, level="warning", object=object)

    def error(self, message: str, *, object: str = "") -> Line:
        return self.log(message, level="error", object=object)

    def debug(self, message: str, *, object: str = "") -> Line:
        return self.log(message, level="debug", object=object)

    def action(self, action: str, object: str, message: str) -> Line:
        return self.log(message, action=action, object=object)

    def set_total(self, total: int | None) -> None:
        return None

    def advance(self, n: int = 1) -> None:
        return None

    def progress(self, done: int, total: int | None) -> None:
        return None

    def check_cancel(self) -> None:
        return None


@dataclasses.dataclass
class Verdict:
    """What the flows would do now for one template: decision, the logged reason, the rule."""

    decision: str
    reason: str
    rule: str


@dataclasses.dataclass
class LearnerSources:
    """One learner's Docebo records, shaped as F7 reads them in bulk."""

    completions: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    course_template: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    course_by_id: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    lp_courses: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    lp_done: dict[tuple[str, str], dict[str, Any]] = dataclasses.field(default_factory=dict)
    lp_maps: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    awards: list[tuple[dict[str, Any], str]] = dataclasses.field(default_factory=list)
    cert_maps: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    certs: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # Docebo certifications by code


def dry_job(ctx: FlowContext, settings: SettingsSnapshot) -> tuple[Job, CapturedRun]:
    rec = CapturedRun()
    return Job(ctx, rec, settings, dry_run=True, batch=True, notify=False), rec  # type: ignore[arg-type]


def _verdict(lines: list[Line], default_rule: str) -> Verdict:
    """The captured lines of one decision as one verdict: the first write wins, else the last
    line (the skip that ended it)."""
    for line in lines:
        if line.action in ACTIONS:
            return Verdict(ACTIONS[line.action], line.message, _rule_of(line.message, default_rule))
    if not lines:
        return Verdict("nothing", "the flows log nothing for it: nothing to do", default_rule)
    last = lines[-1]
    return Verdict("nothing", last.message, _rule_of(last.message, default_rule))


def _rule_of(message: str, default: str) -> str:
    found = _RULE_AT_END.search(message)
    return found.group(1) if found else default


def candidates(job: Job, sources: LearnerSources) -> list[d2c.Candidate]:
    """F7's own candidate choice (one per template, F4 first, current ones only)."""
    return d2c._candidates(
        job,
        sources.completions,
        sources.course_template,
        sources.course_by_id,
        sources.lp_courses,
        sources.lp_done,
        sources.lp_maps,
        sources.awards,
        sources.cert_maps,
    )


async def badge_verdict(job: Job, rec: CapturedRun, learner: Learner, cand: d2c.Candidate, held: HeldBadges) -> Verdict:
    """F3/F4 for one candidate: `ensure_badge` as F7 calls it (a badge to issue is queued)."""
    entry = ledger.live_entry(job.store, "badge", learner.email, cand.template_id)
    start = len(rec.lines)
    queue: list[Any] = []
    await d2c.ensure_badge(job, learner, cand, held, entry, queue)
    if queue:
        return Verdict("issue", "would " + badge_apply._issue_message(learner, cand), cand.rule)
    return _verdict(rec.lines[start:], cand.rule)


async def import_verdict(
    job: Job, rec: CapturedRun, badge: dict[str, Any], learner: Learner | None, maps: list[dict[str, Any]], side: Any
) -> Verdict:
    """F5 for one of the learner's Credly badges: `apply_badge` as F6 calls it."""
    start = len(rec.lines)
    await c2d.apply_badge(job, badge, learner, maps, side)
    return _verdict(rec.lines[start:], "F5")
