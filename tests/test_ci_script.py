""".ci/run runs the static checks, then the README's test command verbatim, and fails on a
run that collected no test (pytest exit 5)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CI = ROOT / ".ci" / "run"


def _readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"^python3 -m venv \.venv && .*$", readme, re.MULTILINE)
    assert len(commands) == 2, commands
    return commands[1]


def test_ci_runs_the_readme_test_command_verbatim_after_the_static_checks():
    lines = CI.read_text(encoding="utf-8").splitlines()
    command = _readme_test_command()
    test_step = next(n for n, line in enumerate(lines) if command in line)
    for check in (".venv/bin/ruff check .", ".venv/bin/mypy services", ".venv/bin/lint-imports"):
        check_step = next(n for n, line in enumerate(lines) if line.strip() == check)
        assert check_step < test_step, check


def test_ci_fails_when_pytest_collects_nothing(tmp_path):
    """The test step's status handling, run with a stand-in for pytest that exits 5."""
    lines = CI.read_text(encoding="utf-8").splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("status=0"))
    tail = "\n".join(lines[start:]).replace(_readme_test_command(), "(exit 5)")
    result = subprocess.run(["bash", "-c", "set -euo pipefail\n" + tail], capture_output=True, text=True)
    assert result.returncode == 5
    assert "no tests" in result.stderr
