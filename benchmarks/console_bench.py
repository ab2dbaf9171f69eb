"""Measure the console: time to the first screen, opening the mappings section with 50,000
mappings, and the time of each filter keystroke.

Design notes: docs/design/benchmarks.md
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from services.appcontext import AppContext  # noqa: E402
from services.core.config import AppConfig  # noqa: E402
from services.core.secrets import MemorySecrets  # noqa: E402
from services.store.db import Store  # noqa: E402
from services.store.mappings import count_mappings, query_mappings  # noqa: E402

T0 = "2025-06-01T09:00:00.000Z"


def fill(path: Path, rows: int) -> None:
    templates = [(str(uuid.UUID(int=n + 1, version=4)), f"Badge {n:02d}") for n in range(40)]
    with Store(path) as store, store.write() as db:
        db.conn.executemany(
            "INSERT INTO badge_templates (template_id, name, is_active, credly_state, created_at, updated_at) "
            "VALUES (?, ?, 1, 'active', ?, ?)", [(t, n, T0, T0) for t, n in templates])
        db.conn.executemany(
            "INSERT INTO mappings (template_id, template_name, learning_plan_id, certification_code, "
            "import_as_external_training, is_active, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(templates[i % 40][0], templates[i % 40][1], str(i + 1), f"CERT-{i:05d}" if i % 3 == 0 else "",
              i % 2, 1 if i % 7 else 0, T0, T0) for i in range(rows)])


async def settle(pilot) -> None:
    from textual.worker import WorkerState

    app = pilot.app
    while True:
        await pilot.pause()
        busy = [w for w in app.workers if w.state in (WorkerState.PENDING, WorkerState.RUNNING)]
        if not busy:
            await pilot.pause()
            if not [w for w in app.workers if w.state in (WorkerState.PENDING, WorkerState.RUNNING)]:
                return
            continue
        await asyncio.gather(*(w.wait() for w in busy), return_exceptions=True)


SHOWN: list[float] = []


def _hook() -> None:
    """Record when a table page or the dashboard is filled in (see the module docstring)."""
    from screens.dashboard import DashboardScreen
    from screens.widgets.paged_table import PagedTable

    show_page, paint = PagedTable.show_page, DashboardScreen._show

    def timed_show_page(self, *args, **kwargs):
        result = show_page(self, *args, **kwargs)
        SHOWN.append(time.perf_counter())
        return result

    def timed_paint(self, *args, **kwargs):
        result = paint(self, *args, **kwargs)
        SHOWN.append(time.perf_counter())
        return result

    PagedTable.show_page = timed_show_page
    DashboardScreen._show = timed_paint


def _first_after(t: float) -> float:
    return min(s for s in SHOWN if s >= t) - t


async def measure(path: Path, rows: int, text: str, size: tuple[int, int]) -> dict:
    from console.app import CredlyConsoleApp
    from screens.widgets.paged_table import PagedTable

    _hook()
    ctx = AppContext(config=AppConfig(), secrets=MemorySecrets(), database_path=path)
    started = time.perf_counter()
    app = CredlyConsoleApp(ctx, cursor_blink=False)
    out: dict = {"rows": rows, "filter": text}
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        out["first_screen_s"] = _first_after(started)

        t = time.perf_counter()
        await pilot.press("4")
        await settle(pilot)
        table = app.screen.query_one(PagedTable)
        assert table.page_total == rows, (table.page_total, rows)
        out["open_mappings_s"] = _first_after(t)

        await pilot.press("slash")
        await settle(pilot)
        keys, trips = [], []
        for ch in text:
            t = time.perf_counter()
            await pilot.press(ch)
            await settle(pilot)
            trips.append(time.perf_counter() - t)
            keys.append(_first_after(t))
        out["keystroke_s"] = keys
        out["pilot_round_trip_s"] = trips
        out["matches"] = table.page_total
    sql = []
    with Store(path) as store:
        for n in range(1, len(text) + 1):
            t = time.perf_counter()
            count_mappings(store, text=text[:n])
            query_mappings(store, text=text[:n], limit=200)
            sql.append(time.perf_counter() - t)
    out["sql_per_keystroke_s"] = sql
    return out


def import_time() -> float:
    """Seconds to start Python and import the console (what precedes the first screen)."""
    import subprocess

    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import console.app"], cwd=Path(__file__).resolve().parents[1], check=True)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--filter", default="12345")
    parser.add_argument("--size", default="120x36")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        t = time.perf_counter()
        fill(path, args.rows)
        fill_s = time.perf_counter() - t
        result = asyncio.run(measure(path, args.rows, args.filter, (width, height)))
    result["fill_s"] = fill_s
    result["start_and_import_s"] = import_time()
    keys = result["keystroke_s"]
    from _common import machine, machine_line

    result["machine"] = machine()
    print(f"console benchmark: {args.rows:,} mappings, terminal {width}x{height}; {machine_line()}")
    print(f"{'measure':<38}{'seconds':>10}")
    print(f"{'fill the database (not the console)':<38}{fill_s:>10.3f}")
    print(f"{'python start + import the console':<38}{result['start_and_import_s']:>10.3f}")
    print(f"{'first screen (dashboard painted)':<38}{result['first_screen_s']:>10.3f}")
    print(f"{'open mappings (first page + total)':<38}{result['open_mappings_s']:>10.3f}")
    for n, (ui, sql) in enumerate(zip(keys, result["sql_per_keystroke_s"], strict=True), start=1):
        print(f"{'filter keystroke ' + repr(args.filter[:n]):<38}{ui:>10.3f}   (SQL alone {sql:.3f})")
    print(f"{'keystroke median / max':<38}{statistics.median(keys):>10.3f} / {max(keys):.3f}")
    print(f"{'(test driver round trip, median)':<38}{statistics.median(result['pilot_round_trip_s']):>10.3f}")
    print(f"matches for {args.filter!r}: {result['matches']:,}")
    result["keystroke_median_s"] = statistics.median(keys)
    result["keystroke_max_s"] = max(keys)
    print(json.dumps({"benchmark": "console", **{k: (round(v, 4) if isinstance(v, float) else
                                                    [round(x, 4) for x in v] if isinstance(v, list) else v)
                                                for k, v in result.items()}}))


if __name__ == "__main__":
    main()
