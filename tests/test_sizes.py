"""Size limits outside tests (issue 11, DESIGN.md house style): no module over 600 lines and no
function over 120 lines in services/, console/, screens/ and benchmarks/. Files another open
issue is about to shrink are allowed, each naming that issue; the lead removes an entry when it
lands, and an entry that no longer exceeds its limit fails here so it cannot linger."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ("services", "console", "screens", "benchmarks")
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 120

# path -> the issue that shrinks it (temporary; remove the entry when that issue lands)
ALLOWED = {
    "services/clients/http.py": "issue 15 (shared API budget in the rate limiter; owned by i15)",
}


def _sources() -> list[Path]:
    return sorted(p for top in CHECKED for p in (ROOT / top).rglob("*.py"))


def oversized(path: Path) -> list[str]:
    """What in `path` breaks a limit, e.g. ``"module: 612 lines"`` or ``"function run: 130 lines"``."""
    text = path.read_text(encoding="utf-8")
    found = []
    lines = len(text.splitlines())
    if lines > MAX_MODULE_LINES:
        found.append(f"module: {lines} lines")
    for node in ast.walk(ast.parse(text, filename=str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            size = (node.end_lineno or node.lineno) - node.lineno + 1
            if size > MAX_FUNCTION_LINES:
                found.append(f"function {node.name} (line {node.lineno}): {size} lines")
    return found


def test_the_checker_sees_the_sources():
    names = {p.relative_to(ROOT).as_posix() for p in _sources()}
    assert "services/store/db.py" in names and "console/app.py" in names and "screens/base.py" in names


def test_the_checker_finds_a_long_function_and_a_long_module(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    sample = tmp_path / "sample.py"
    sample.write_text("def long():\n" + body + "\n" + "\n" * MAX_MODULE_LINES, encoding="utf-8")
    assert oversized(sample) == [f"module: {MAX_FUNCTION_LINES + 1 + MAX_MODULE_LINES} lines",
                                 f"function long (line 1): {MAX_FUNCTION_LINES + 1} lines"]


def test_no_module_or_function_over_the_limits():
    offenders = {}
    for path in _sources():
        rel = path.relative_to(ROOT).as_posix()
        if rel not in ALLOWED:
            found = oversized(path)
            if found:
                offenders[rel] = found
    assert offenders == {}, "split these by role: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in offenders.items())


def test_every_allowed_file_still_needs_its_entry():
    stale = [rel for rel in ALLOWED if not (ROOT / rel).exists() or not oversized(ROOT / rel)]
    assert stale == [], f"remove these from ALLOWED, they are within the limits now: {stale}"
