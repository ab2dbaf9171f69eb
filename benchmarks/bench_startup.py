"""`credly-console --help` start-up time, and what its imports cost (issue 8).

Design notes: docs/design/benchmarks.md
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, emit, machine, machine_line, table  # noqa: E402

HELP = "import sys; sys.argv = ['credly-console', '--help']; from console.cli import main; main()"


def entry_point() -> list[str]:
    script = Path(sys.executable).parent / "credly-console"
    return [str(script), "--help"] if script.exists() else [sys.executable, "-c", HELP]


def timed(cmd: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
        out.append(time.perf_counter() - t)
        if r.returncode != 0:
            raise SystemExit(f"{cmd} failed: {r.stderr.decode()[-1000:]}")
    return out


def importtime() -> list[tuple[str, int, int, int]]:
    """(module, self µs, cumulative µs, depth) of every import of `--help`."""
    r = subprocess.run([sys.executable, "-X", "importtime", "-c", HELP], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, cwd=ROOT)
    rows = []
    for line in r.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cum_us, name = line[len("import time:"):].split("|", 2)
        depth = (len(name) - len(name.lstrip(" "))) // 2
        rows.append((name.strip(), int(self_us), int(cum_us), depth))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()

    cmd = entry_point()
    timed(cmd, 2)  # warm the OS file cache
    bare = timed([sys.executable, "-c", "pass"], args.runs)
    helps = timed(cmd, args.runs)
    imports = importtime()
    names = {n for n, *_ in imports}
    total_us = sum(s for _, s, _, _ in imports)
    ours = [r for r in imports if r[0].split(".")[0] in ("console", "services", "screens")]
    # offenders by cumulative time below the top level (depth 1: what console.cli and site import,
    # depth 2: what those import), each named with its parent
    parent: dict[int, str] = {}
    nested = []
    for name, self_us, cum_us, depth in reversed(imports):  # importtime prints children first
        parent[depth] = name
        if depth in (1, 2):
            nested.append((name if depth == 1 else f"{parent.get(1, '?')} > {name}", self_us, cum_us, depth))
    by_cum = sorted(nested, key=lambda r: -r[2])[: args.top]
    by_self = sorted(imports, key=lambda r: -r[1])[: args.top]

    result = {
        "benchmark": "startup",
        "machine": machine(),
        "command": "credly-console --help" if len(cmd) == 2 else "python -c <credly-console --help>",
        "runs": args.runs,
        "help_median_s": round(statistics.median(helps), 3),
        "help_min_s": round(min(helps), 3),
        "help_max_s": round(max(helps), 3),
        "python_bare_median_s": round(statistics.median(bare), 3),
        "imports_total_ms": round(total_us / 1000, 1),
        "imports_ours_ms": round(sum(s for _, s, _, _ in ours) / 1000, 1),
        "modules_imported": len(imports),
        "textual_imported": any(n == "textual" or n.startswith("textual.") for n in names),
        "rich_imported": any(n == "rich" or n.startswith("rich.") for n in names),
        "top_cumulative_ms": {n: round(c / 1000, 1) for n, _, c, _ in by_cum},
        "top_self_ms": {n: round(s / 1000, 1) for n, s, _, _ in by_self},
    }
    print(f"machine: {machine_line()}; {args.runs} runs each")
    print(table([
        ["credly-console --help", result["help_median_s"], result["help_min_s"], result["help_max_s"]],
        ["python -c pass (interpreter alone)", result["python_bare_median_s"], round(min(bare), 3), round(max(bare), 3)],
    ], ["command", "median s", "min s", "max s"]))
    print(f"\nimports of --help (python -X importtime): {len(imports)} modules, {result['imports_total_ms']} ms "
          f"(console/services: {result['imports_ours_ms']} ms); textual imported: {result['textual_imported']}, "
          f"rich imported: {result['rich_imported']}")
    print(table([[n, round(c / 1000, 1), round(s / 1000, 1)] for n, s, c, _ in by_cum],
                ["import (level 1, level 1 > level 2)", "cumulative ms", "self ms"]))
    print()
    print(table([[n, round(s / 1000, 1)] for n, s, _, _ in by_self], ["module (own time)", "self ms"]))
    emit(result)


if __name__ == "__main__":
    main()
