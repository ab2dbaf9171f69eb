"""`credly-console explain` end to end (issue 13): a subprocess against both sandboxes served by
the sandbox runner; the JSON shape and the exit statuses 0 / 1 / 2."""

from __future__ import annotations

import json
import os

import pytest

from services.sandbox.runner import SandboxOptions, run_sandboxes
from services.store.db import Store
from tests.flows.test_kill_and_cli import _cli, _prepare, _write_config
from tests.flows.world import T_SAFETY, base_data
from tests.support.world import completed

pytestmark = [pytest.mark.e2e]


async def _run(env, *args):
    proc = await _cli(env, "explain", *args)
    out, err = await proc.communicate()
    return proc.returncode, out.decode(), err.decode()


async def test_cli_explain_json_text_and_exit_codes(tmp_path):
    async with run_sandboxes(SandboxOptions(data=base_data(enrollments=[completed(101, 1)]))) as sb:
        env = _write_config(tmp_path, sb)
        with Store(os.environ["CREDLY_CONSOLE_DB"]) as store:
            await _prepare(sb, store, [])
        code, out, err = await _run(env, "alice@example.com", "--json")
        assert code == 0, err
        data = json.loads(out)
        assert set(data) == {"learner", "templates", "blocked"}
        assert data["learner"] == {"docebo_user_id": "1", "email": "alice@example.com", "found_in_docebo": True}
        (t,) = data["templates"]
        assert set(t) == {"template_id", "template_name", "sources", "credly_badges", "docebo_objects", "decision", "reason",
                          "rule", "history"}
        assert (t["template_id"], t["decision"], t["rule"]) == (T_SAFETY, "issue", "F3a")
        assert t["sources"] == [{"type": "course", "id": "101", "date": "2025-03-01 10:00:00"}]
        assert sb.credly.state.badges == {}  # explain never writes
        code, out, err = await _run(env, "1")
        assert code == 0 and "Safety Basics" in out and "decision: issue [F3a]" in out
        code, out, err = await _run(env, "nobody@example.com")
        assert code == 1 and "neither a Docebo user nor the recipient of a Credly badge" in err
        code, out, err = await _run(env, "not-a-learner")
        assert code == 2 and "neither a Docebo user id" in err and out == ""
