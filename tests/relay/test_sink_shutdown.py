"""Stopping the usage sink always ends it, with every event written.

The relay fuzzer found this: shutting down right after a full batch woke the flusher
hung for ever, because asyncio.wait_for (Python 3.11) returns the finished inner
wait instead of raising the cancellation that arrived in the same loop turn; the
flusher then ran on and ``stop`` waited for it for ever.
"""

from __future__ import annotations

import asyncio

from billing.events import UsageEvent
from gateway.metering import BATCH_SIZE, Sink


class MemorySink(Sink):
    def __init__(self) -> None:
        super().__init__()
        self.stored: list[UsageEvent] = []

    async def write(self, batch: list[UsageEvent]) -> None:
        self.stored += batch


def event(number: int) -> UsageEvent:
    return UsageEvent(
        request_id=f"req_{number}",
        team_id="team",
        api_key_id=None,
        endpoint="chat",
        alias="gpt-4o",
        credential_id=None,
        provider="openai",
        upstream_model="gpt-4o",
        prompt_tokens=1,
        cached_tokens=0,
        cache_write_tokens=0,
        completion_tokens=1,
        reasoning_tokens=0,
        estimated=False,
        status=200,
        error_class="",
        streamed=False,
        attempts=1,
        latency_ms=1.0,
        ttfb_ms=None,
        overhead_ms=0.1,
        created_at=0.0,
    )


def test_stop_right_after_a_full_batch_woke_the_flusher_returns() -> None:
    async def scenario() -> MemorySink:
        sink = MemorySink()
        await sink.start()
        await asyncio.sleep(0)  # the flusher now waits for work
        for number in range(BATCH_SIZE + 3):  # a full batch wakes it...
            sink.emit(event(number))
        # ...and stop cancels it in the same loop turn.
        stopping = asyncio.create_task(sink.stop())
        done, _ = await asyncio.wait({stopping}, timeout=5)  # a bound, not a measurement
        assert stopping in done, "stop() did not return"
        # Nothing of the sink runs on (the flusher used to loop for ever).
        assert asyncio.all_tasks() == {asyncio.current_task()}
        return sink

    sink = asyncio.run(scenario())

    assert [e.request_id for e in sink.stored] == [f"req_{n}" for n in range(BATCH_SIZE + 3)]
    assert sink.pending == []


class SlowSink(MemorySink):
    def __init__(self) -> None:
        super().__init__()
        self.writing = asyncio.Event()  # set once a write has begun

    async def write(self, batch: list[UsageEvent]) -> None:
        self.writing.set()
        await asyncio.sleep(3600)


def test_stop_passes_on_a_cancellation_of_its_caller() -> None:
    async def scenario() -> bool:
        sink = SlowSink()
        await sink.start()
        sink.emit(event(1))
        await sink.writing.wait()  # the flusher is now inside the slow write
        stopping = asyncio.create_task(sink.stop())
        await asyncio.sleep(0)
        stopping.cancel()  # e.g. a server's shutdown deadline
        done, _ = await asyncio.wait({stopping}, timeout=5)
        return stopping in done and stopping.cancelled()

    assert asyncio.run(scenario())


def test_a_cancelled_write_keeps_its_batch() -> None:
    async def scenario() -> list[UsageEvent]:
        sink = SlowSink()
        sink.emit(event(1))
        flushing = asyncio.create_task(sink.flush())
        await asyncio.sleep(0)
        flushing.cancel()
        await asyncio.wait({flushing})
        return sink.pending

    assert [e.request_id for e in asyncio.run(scenario())] == ["req_1"]
