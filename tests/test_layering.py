"""DESIGN.md layering: services/ never pulls in the terminal UI; the CLI's --help starts
without Textual."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import services

ROOT = Path(__file__).resolve().parent.parent


def _service_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(services.__path__, "services."))


def test_there_are_service_modules_to_check():
    assert "services.store.db" in _service_modules()


def test_importing_every_service_module_imports_neither_textual_nor_rich():
    code = (
        "import importlib, sys\n"
        # httpx's package __init__ imports its own command line (click, rich) whenever rich is
        # installed; those modules are httpx's doing, not ours, so they form the baseline.
        "import httpx\n"
        "baseline = set(sys.modules)\n"
        f"for name in {_service_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'textual'\n"
        "             or (m.split('.')[0] == 'rich' and m not in baseline))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_cli_help_does_not_import_textual():
    code = (
        "import sys\n"
        "from console.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "print('textual' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_no_service_source_imports_rich_or_textual():
    """The import check above cannot see rich modules httpx already loaded; the sources can."""
    import re

    pattern = re.compile(r"^\s*(import|from)\s+(rich|textual)\b", re.MULTILINE)
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "services").rglob("*.py")
                 if pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(lint), "--no-cache"], cwd=tree, capture_output=True, text=True,
                          env={"PYTHONPATH": str(tree), "PATH": str(lint.parent)})


def _copy_packages(dest: Path) -> None:
    import shutil

    for name in ("services", "screens", "console"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")


def test_import_linter_contracts_hold_on_the_tree():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_import_linter_fails_on_a_planted_upward_import(tmp_path):
    """The contracts bite: a copy of the tree passes, the same copy with one upward import
    (the store reaching into the flows) fails and names the broken layering contract."""
    _copy_packages(tmp_path)
    assert _lint_imports(tmp_path).returncode == 0
    planted = tmp_path / "services" / "store" / "settings.py"
    planted.write_text(planted.read_text(encoding="utf-8") + "\nimport services.flows.rules  # planted\n",
                       encoding="utf-8")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert "services are layered" in result.stdout and "BROKEN" in result.stdout
    assert "services.store.settings -> services.flows.rules" in result.stdout


def test_import_linter_fails_when_screens_import_console(tmp_path):
    _copy_packages(tmp_path)
    planted = tmp_path / "screens" / "templates.py"
    planted.write_text(planted.read_text(encoding="utf-8") + "\nimport console.app  # planted\n", encoding="utf-8")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0 and "screens never import console" in result.stdout
