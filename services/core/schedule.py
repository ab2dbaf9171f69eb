"""Schedule maths of the jobs (W4): which flows run when, as python-dateutil rrules.

The daily job is anchored in America/Los_Angeles wall time (02:00 across DST changes; on the
spring-forward day it runs at the first instant after the gap); the 5-minute rules fall on :00,
:05, ... UTC. A job is due when an occurrence falls after its last start and not after now, so
runs missed while `serve` was down run once, not once per missed occurrence.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from dateutil import rrule, tz

LOS_ANGELES = tz.gettz("America/Los_Angeles")
UTC = dt.UTC


@dataclasses.dataclass(frozen=True)
class JobSpec:
    job: str  # schedule.job
    flow: str  # run_flow name
    rule: str  # "daily-02:00-la" | "every-5-minutes"
    description: str
    after: str = ""  # a job that must not be running when this one starts (F2 reads what F1 writes)


JOBS: dict[str, JobSpec] = {
    "templates": JobSpec("templates", "templates", "daily-02:00-la", "F1 badge templates, daily at 02:00 America/Los_Angeles"),
    "dropdown": JobSpec("dropdown", "dropdown", "every-5-minutes", "F2 course dropdown, every 5 minutes", after="templates"),
    "docebo_to_credly": JobSpec("docebo_to_credly", "docebo-to-credly", "every-5-minutes",
                                "F7 batch Docebo → Credly, every 5 minutes when enabled"),
    "credly_to_docebo": JobSpec("credly_to_docebo", "credly-to-docebo", "every-5-minutes",
                                "F6 batch Credly → Docebo, every 5 minutes when enabled"),
}


def job_name(name: str) -> str:
    """Normalise a job name (``docebo-to-credly`` or ``docebo_to_credly``); ValueError if unknown."""
    key = name.strip().lower().replace("-", "_")
    if key not in JOBS:
        raise ValueError(f"unknown job {name!r}; expected one of {', '.join(JOBS)}")
    return key


def _rule(spec: JobSpec, around: dt.datetime) -> rrule.rrule:
    """The job's rrule, started a little before ``around`` (rrules iterate from their start)."""
    if spec.rule == "daily-02:00-la":
        local = around.astimezone(LOS_ANGELES)
        start = dt.datetime(local.year, local.month, local.day, 2, 0, tzinfo=LOS_ANGELES) - dt.timedelta(days=2)
        start = start.replace(hour=2, minute=0, second=0, microsecond=0)
        return rrule.rrule(rrule.DAILY, dtstart=start, byhour=2, byminute=0, bysecond=0)
    if spec.rule == "every-5-minutes":
        utc = around.astimezone(UTC)
        start = dt.datetime(utc.year, utc.month, utc.day, tzinfo=UTC) - dt.timedelta(days=1)
        return rrule.rrule(rrule.MINUTELY, interval=5, dtstart=start)
    raise ValueError(f"unknown rule {spec.rule!r}")


def _real(moment: dt.datetime) -> dt.datetime:
    """A wall time that falls in a DST gap moves to the first instant after it; result in UTC."""
    return tz.resolve_imaginary(moment).astimezone(UTC)


def next_occurrence(job: str, after: dt.datetime) -> dt.datetime:
    """The first occurrence of ``job``'s rule strictly after ``after`` (aware), in UTC."""
    spec = JOBS[job_name(job)]
    rule = _rule(spec, after)
    candidate = rule.after(after.astimezone(rule._dtstart.tzinfo), inc=False)  # type: ignore[attr-defined]
    while candidate is not None and _real(candidate) <= after:
        candidate = rule.after(candidate, inc=False)
    assert candidate is not None
    return _real(candidate)


def last_occurrence(job: str, at_or_before: dt.datetime) -> dt.datetime | None:
    """The latest occurrence not after ``at_or_before``, in UTC."""
    spec = JOBS[job_name(job)]
    rule = _rule(spec, at_or_before)
    candidate = rule.before(at_or_before.astimezone(rule._dtstart.tzinfo), inc=True)  # type: ignore[attr-defined]
    return _real(candidate) if candidate is not None else None


def parse_stamp(stamp: str | None) -> dt.datetime | None:
    if not stamp:
        return None
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def format_stamp(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def is_due(job: str, last_started: dt.datetime | None, now: dt.datetime) -> bool:
    """W4: never ran → due; else due when an occurrence falls in (last start, now]."""
    if last_started is None:
        return True
    return next_occurrence(job, last_started) <= now
