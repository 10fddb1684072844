"""The data plane's housekeeping timers on a real event loop: connect deadlines enforced on time by one timer,
the sweep running only while something is open, and nothing armed once all is quiet."""

from __future__ import annotations

import asyncio

from lb.dataplane import Keeper


class Connecting:
    """A session-like object waiting for its server: records when the keeper gave up on it."""

    def __init__(self, keeper: Keeper, deadline: float) -> None:
        self.keeper = keeper
        self.connect_deadline = deadline
        self.timed_out_at: float | None = None

    def connect_timed_out(self) -> None:
        self.timed_out_at = self.keeper.loop.time()


def test_each_connect_times_out_at_its_own_deadline_then_no_timer_is_left() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        sweeps: list[float] = []

        def sweep() -> bool:  # nothing but the connects is open
            sweeps.append(loop.time())
            return False

        keeper = Keeper(loop, sweep)
        keeper.period = 0.05
        t0 = loop.time()
        slow = Connecting(keeper, t0 + 0.4)
        fast = Connecting(keeper, t0 + 0.1)  # started later, due earlier: the timer moves forward
        done = Connecting(keeper, t0 + 0.2)
        for s in (slow, fast, done):
            keeper.connect_started(s)
        keeper.connecting.discard(done)  # connected in time: never timed out
        await asyncio.sleep(0.6)
        assert fast.timed_out_at is not None and 0.09 <= fast.timed_out_at - t0 < 0.2
        assert slow.timed_out_at is not None and 0.39 <= slow.timed_out_at - t0 < 0.5
        assert done.timed_out_at is None
        assert keeper.connect_timer is None and not keeper.connecting
        assert len(sweeps) == 1 and keeper.sweep_timer is None  # one sweep found nothing open, then none

    asyncio.run(scenario())


def test_the_sweep_runs_while_sessions_are_open_and_stops_after() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        open_until = loop.time() + 0.25
        sweeps: list[float] = []

        def sweep() -> bool:
            sweeps.append(loop.time())
            return loop.time() < open_until

        keeper = Keeper(loop, sweep)
        keeper.period = 0.05
        keeper.wake()
        keeper.wake()  # a second session while the sweep is armed adds no second timer
        await asyncio.sleep(0.6)
        assert 4 <= len(sweeps) <= 7  # every 0.05 s until 0.25 s, then the one that finds nothing open
        assert keeper.sweep_timer is None
        assert all(b - a >= 0.045 for a, b in zip(sweeps, sweeps[1:]))
        quiet = len(sweeps)
        keeper.wake()  # a new session starts the sweep again
        await asyncio.sleep(0.1)
        assert len(sweeps) == quiet + 1 and keeper.sweep_timer is None

    asyncio.run(scenario())


def test_a_failing_sweep_is_logged_and_retried() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        calls: list[int] = []

        def sweep() -> bool:
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("boom")
            return False

        keeper = Keeper(loop, sweep)
        keeper.period = 0.02
        keeper.wake()
        await asyncio.sleep(0.2)
        assert len(calls) == 2 and keeper.sweep_timer is None

    asyncio.run(scenario())
