"""The usage sink while its store (the Redis stream) is away: it keeps every event and retries,
but backs off instead of trying every flush interval, and says so in a few log lines instead
of a traceback per attempt.

The fault suite found this: during a 3-second Redis restart each web worker logged about 20
tracebacks a second ("could not write N usage events"), and under load a full batch woke the
flusher on every new event, so it retried as fast as requests came in.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from billing.events import UsageEvent
from gateway.metering import BATCH_SIZE, FLUSH_INTERVAL, RETRY_MAX, Sink
from tests.relay.test_sink_shutdown import event


class FlakySink(Sink):
    """A store that refuses writes while ``down``."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True
        self.attempts = 0
        self.stored: list[UsageEvent] = []

    async def write(self, batch: list[UsageEvent]) -> None:
        self.attempts += 1
        if self.down:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        self.stored += batch


def test_an_outage_is_logged_once_not_per_attempt(caplog: pytest.LogCaptureFixture) -> None:
    sink = FlakySink()
    sink.emit(event(1))

    async def outage() -> None:
        for _ in range(40):  # two seconds of attempts at the old pace
            await sink.flush()
        sink.down = False
        await sink.flush()

    with caplog.at_level(logging.WARNING, logger="baton.metering"):
        asyncio.run(outage())

    assert sink.attempts == 41
    assert [e.request_id for e in sink.stored] == ["req_1"] and sink.pending == []
    records = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert records == [
        ("ERROR", "could not write 1 usage events; will retry"),
        ("WARNING", "usage events written again after 40 failed attempts"),
    ]
    assert caplog.records[0].exc_info is not None  # the first failure says why, once


def test_the_flusher_backs_off_while_the_store_is_away() -> None:
    sink = FlakySink()
    assert sink.delay() == FLUSH_INTERVAL
    sink.emit(event(1))
    delays = []
    for _ in range(8):
        asyncio.run(sink.flush())
        delays.append(sink.delay())
    assert delays == sorted(delays) and delays[0] == 2 * FLUSH_INTERVAL
    assert delays[-1] == RETRY_MAX
    sink.down = False
    asyncio.run(sink.flush())
    assert sink.delay() == FLUSH_INTERVAL


def test_new_events_do_not_wake_a_failing_flusher() -> None:
    """A full batch wakes the flusher at once, but not while its store is away: every request
    would set off another attempt."""
    sink = FlakySink()
    for number in range(BATCH_SIZE):
        sink.emit(event(number))
    assert sink._wake.is_set()
    sink._wake.clear()
    asyncio.run(sink.flush())  # fails
    for number in range(BATCH_SIZE, BATCH_SIZE + 10):
        sink.emit(event(number))
    assert not sink._wake.is_set()
    assert len(sink.pending) == BATCH_SIZE + 10


def test_stop_ends_a_backing_off_flusher_and_keeps_its_events() -> None:
    async def scenario() -> tuple[bool, FlakySink]:
        sink = FlakySink()
        await sink.start()
        sink.emit(event(1))
        while sink.attempts < 3:  # the flusher has failed a few times and waits longer
            await asyncio.sleep(FLUSH_INTERVAL / 5)
        stopping = asyncio.create_task(sink.stop())
        done, _ = await asyncio.wait({stopping}, timeout=5)  # a bound, not a measurement
        return stopping in done, sink

    returned, sink = asyncio.run(scenario())
    assert returned
    assert [e.request_id for e in sink.pending] == ["req_1"]
