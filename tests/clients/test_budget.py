"""The install-wide API budget (issue 15 points 1 and 2): services/clients/budget.py."""

from __future__ import annotations

import asyncio
import multiprocessing
from pathlib import Path

import pytest

from services.clients.budget import SharedBudget, caller_class, current_caller_class


class FakeTime:
    """A wall clock that moves only when a caller sleeps (no real waiting)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def wall(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def budget(path: Path, t: FakeTime, **kw) -> SharedBudget:
    kw.setdefault("limit", 100)
    kw.setdefault("window", 100.0)
    kw.setdefault("burst", 10)
    return SharedBudget(path / "db.sqlite.docebo-budget", wall=t.wall, sleep=t.sleep, **kw)


def test_caller_class_is_scoped_and_checked():
    assert current_caller_class() == "batch"
    with caller_class("realtime"):
        assert current_caller_class() == "realtime"
    assert current_caller_class() == "batch"
    with pytest.raises(ValueError, match="unknown caller class 'urgent'"), caller_class("urgent"):
        pass


def test_two_instances_on_one_file_share_the_budget(tmp_path):
    t = FakeTime()
    a, b = budget(tmp_path, t), budget(tmp_path, t)

    async def go():
        with caller_class("realtime"):
            for _ in range(5):
                await a.acquire()
                await b.acquire()

    asyncio.run(go())
    # 10 real-time calls from two "processes" used the whole burst of 10 without waiting
    assert t.now == 1_000_000.0
    assert a.remaining() == 0 and b.remaining() == 0
    assert b.usage()["used"] == 10 and b.usage()["left"] == 90


def test_any_window_stays_within_the_limit(tmp_path):
    t = FakeTime()
    b = budget(tmp_path, t)
    starts: list[float] = []

    async def go():
        for _ in range(250):
            await b.acquire()
            starts.append(t.now)

    asyncio.run(go())
    for i, s in enumerate(starts):
        in_window = sum(1 for x in starts[i:] if x < s + 100.0)
        assert in_window <= 100
    # and nothing is wasted: 250 calls took (250 - burst) intervals of 100 s / 90 calls
    assert starts[-1] - starts[0] == pytest.approx((250 - 10) * 100 / 90, rel=0.01)


def test_retry_after_pause_is_shared(tmp_path):
    t = FakeTime()
    a, b = budget(tmp_path, t), budget(tmp_path, t)
    a.pause_for(30.0)
    assert b.paused_until() is not None and b.remaining() == 0

    asyncio.run(b.acquire())
    assert t.now >= 1_000_030.0


def test_a_wall_clock_stepped_back_does_not_stall_calls(tmp_path):
    t = FakeTime()
    b = budget(tmp_path, t)

    async def go():
        with caller_class("realtime"):
            for _ in range(12):
                await b.acquire()

    asyncio.run(go())
    t.now -= 10 * 3600  # NTP steps the clock back ten hours
    before = t.now
    asyncio.run(go())
    assert t.now - before <= 100.0 + 12 * 100 / 90  # at most one window, not ten hours


def test_realtime_goes_ahead_of_a_waiting_batch(tmp_path):
    t = FakeTime()
    b = budget(tmp_path, t, batch_share=0.8)
    order: list[str] = []

    async def batch():
        for _ in range(20):
            await b.acquire()
            order.append("batch")

    async def event():
        await asyncio.sleep(0)  # the batch has started and drained the burst
        with caller_class("realtime"):
            await b.acquire()
        order.append("realtime")

    async def go():
        await asyncio.gather(batch(), event())

    asyncio.run(go())
    # the batch left 2 of the 10 tokens (20 %) to real-time work: the event went at once
    assert order.index("realtime") <= 9
    assert b.usage()["by_class"] == {"realtime": 1, "console": 0, "batch": 20}


def _hammer(path: str, n: int) -> None:
    b = SharedBudget(Path(path), limit=1_000_000, window=3600.0, burst=1000)

    async def go():
        for _ in range(n):
            await b.acquire()

    asyncio.run(go())


def test_concurrent_processes_lose_no_count(tmp_path):
    path = str(tmp_path / "db.sqlite.docebo-budget")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_hammer, args=(path, 200)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert SharedBudget(Path(path), limit=1_000_000, window=3600.0, burst=1000).usage()["used"] == 600


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="batch share"):
        SharedBudget(tmp_path / "b", limit=10, batch_share=0)
    with pytest.raises(ValueError, match="at least 1 call"):
        SharedBudget(tmp_path / "b", limit=0)


def test_unlimited_budget_still_counts_calls_by_class(tmp_path):
    b = SharedBudget(tmp_path / "b", limit=None)

    async def go():
        for _ in range(3):
            await b.acquire()
        with caller_class("console"):
            await b.acquire()

    asyncio.run(go())
    assert b.usage()["by_class"] == {"realtime": 0, "console": 1, "batch": 3}
    assert b.remaining() is None and b.usage()["left"] is None


def test_dashboard_line_shows_who_used_the_shared_budget(tmp_path):
    from screens.dashboard import limit_text

    t = FakeTime()
    b = budget(tmp_path, t)

    async def go():
        await b.acquire()
        with caller_class("realtime"):
            await b.acquire()

    asyncio.run(go())
    text = limit_text(b)
    assert text.startswith("8 calls available now (100/100 s, burst 10, shared by this install;")
    assert "2 used, 98 left this window: real-time 1, batch 1, console 0" in text
