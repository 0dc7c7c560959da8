"""`run_all`: every task it starts has finished before it returns or raises."""

from __future__ import annotations

import asyncio

import pytest

from openjd_runtime.scheduling.coordinator import run_all


async def test_it_returns_when_every_coroutine_has_finished() -> None:
    done: list[int] = []

    async def work(n: int) -> None:
        await asyncio.sleep(0.01 * n)
        done.append(n)

    await run_all([work(3), work(1), work(2)])
    assert sorted(done) == [1, 2, 3]


async def test_the_first_error_cancels_the_others_and_is_raised_after_they_finished() -> None:
    cleaned = asyncio.Event()

    async def waits() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            await asyncio.sleep(0.01)
            cleaned.set()

    async def fails() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await run_all([waits(), fails()])
    assert cleaned.is_set()


async def test_cancelling_the_caller_cancels_the_tasks_without_a_hook() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def waits() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    caller = asyncio.ensure_future(run_all([waits()]))
    await started.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert cancelled.is_set()


async def test_with_a_hook_cancelling_the_caller_lets_the_tasks_wind_down() -> None:
    stop = asyncio.Event()
    finished: list[str] = []
    calls: list[int] = []

    async def winds_down() -> None:
        await stop.wait()
        await asyncio.sleep(0.01)
        finished.append("wound down")

    def on_cancel() -> None:
        calls.append(len(calls) + 1)
        stop.set()

    caller = asyncio.ensure_future(run_all([winds_down()], on_cancel=on_cancel))
    await asyncio.sleep(0.01)
    caller.cancel()
    await asyncio.sleep(0)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert finished == ["wound down"]
    assert calls == [1, 2]
