"""A flow that stops on an error of the family (issue 11) records the error's own message as
the run's reason, with its `retryable`; only anything else is an "unexpected error" (a bug,
with its traceback in the run log)."""

from __future__ import annotations

import pytest

from services.core.errors import MissingError
from services.flows.base import FlowContext, execute
from services.store.db import DatabaseBusyError, Store
from services.store.settings import set_setting


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "flows.db") as s:
        set_setting(s, "NOTIFICATION_MAIL_ID", "lms-admin@example.com")  # F1's one required setting (S3)
        yield s


@pytest.mark.parametrize(("error", "retryable"), [
    (DatabaseBusyError("the database x.db is locked by another process (waited 30 s)"), True),
    (MissingError("no Credly connection is available in this console"), False),
])
async def test_an_expected_error_is_the_runs_reason_not_an_unexpected_error(store, error, retryable):
    async def body(job) -> None:
        raise error

    summary = await execute(FlowContext(store), "templates", body, notify=False)
    assert (summary.status, summary.reason, summary.retryable) == ("failed", str(error), retryable)
    log = " ".join(r[0] for r in store.db.execute("SELECT message FROM run_log WHERE run_id = ?", (summary.run_id,)))
    assert "Traceback" not in log and "unexpected error" not in log


async def test_a_bug_stays_an_unexpected_error_with_its_traceback(store):
    async def body(job) -> None:
        raise KeyError("course_id")

    summary = await execute(FlowContext(store), "templates", body, notify=False)
    assert summary.status == "failed" and summary.reason == "unexpected error: KeyError: 'course_id'"
    log = " ".join(r[0] for r in store.db.execute("SELECT message FROM run_log WHERE run_id = ?", (summary.run_id,)))
    assert "Traceback" in log
