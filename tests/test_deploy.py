"""deploy/ (issue 15 point 3): the systemd unit passes `systemd-analyze verify` (with ExecStart
pointed at this checkout's script, the only path that differs here), and the container file
copies files that exist and runs flags `serve` accepts. No image is built on this machine."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from console.cli import cli

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "deploy" / "credly-console.service"
CONTAINERFILE = ROOT / "deploy" / "Containerfile"


def serve_flags() -> str:
    return CliRunner().invoke(cli, ["serve", "--help"]).output


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_unit_verifies(tmp_path):
    script = shutil.which("credly-console") or str(ROOT / ".venv" / "bin" / "credly-console")
    text = UNIT.read_text().replace("/opt/credly-console/.venv/bin/credly-console", script)
    unit = tmp_path / "credly-console.service"
    unit.write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (result.stdout + result.stderr).splitlines() if "credly-console.service" in line]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr


def test_unit_and_container_run_flags_serve_accepts():
    help_text = serve_flags()
    exec_start = next(line for line in UNIT.read_text().splitlines() if line.startswith("ExecStart="))
    cmd_line = next(line for line in CONTAINERFILE.read_text().splitlines() if line.startswith("CMD "))
    import json

    commands = [shlex.split(exec_start.split("=", 1)[1])[1:], json.loads(cmd_line[4:])[1:]]
    for args in commands:
        assert args[0] == "serve"
        for flag in (a for a in args if a.startswith("--")):
            assert flag in help_text, flag
        assert CliRunner().invoke(cli, [*args, "--help"]).exit_code == 0


def test_containerfile_copies_what_exists():
    for line in CONTAINERFILE.read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source
