"""Requests whose process died are billed from their durable record.

Every admitted request leaves a record in its team's in-flight set (admission.lua,
``f``), renewed by its process while it runs. A record whose lease ended more than a
lease ago, and was still so on a second look a third of a lease later, belongs to a
process that died (or lost the limits store for that long): ``reap`` bills it as an
estimated usage record (``estimated=True``, ``error_class="relay_lost"``): the prompt
estimate made at admission plus the completion tokens its process last reported, at
the price of the target it last reported (the dearest candidate if it reported none).

A process that died after its usage event was written (the relay settles only then) but
before its settle landed has its request in the ledger already: the reaper takes the
record at the ledger's cost and writes nothing.

Exactly once, whatever dies: the claim (remove the record, release its hold, count its
cost, leave a tombstone, keep the event in the team's ``e`` hash) is one atomic call,
so a late settle and the reaper never both count it (a settle that finds the tombstone
counts nothing); the event goes to the ledger through ``billing.ledger.ingest`` (unique
on the request id, so a replay or the late settle's own event is ignored) and leaves
``e`` only after the commit, so a reaper that dies in between leaves it for the next.

Which teams to look at: each relay process registers the teams it has requests in
flight for in ``bq:{reap}:due`` (at most once a lease per team, batched with the
admission call or the renewals), and a reaper looks only at teams due. It runs in every
web process (each renewal tick, in a worker thread) and as the Celery beat task
``billing.reap_inflight`` (every 5 s), so the bound holds with either alive: a dead
process's requests are in the ledger within 3 x ``BATON_LEASE_SECONDS`` of its last
renewal, plus one reaper interval.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from billing import conf
from billing.events import UsageEvent
from billing.ledger import ingest
from billing.money import to_nanos
from billing.quota import script
from billing.quota.script import Record, Report
from billing.quota.store import Store, store

log = logging.getLogger("baton.billing")

TEAMS_PER_PASS = 100
RECORDS_PER_TEAM = 200
TOMBSTONE_SECONDS = 3600.0  # a settle later than this after the reap would count again
LOST_STATUS = 500
LOST_ERROR = "relay_lost"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class Timing:
    """The reaper's times (ms), from the lease."""

    grace: int
    confirm: int
    keep: int  # a team nobody registered for this long leaves the index

    @classmethod
    def from_settings(cls) -> Timing:
        lease = int(conf.lease_seconds() * 1000)
        return cls(grace=lease, confirm=max(1, lease // 3), keep=2 * lease)


@dataclass
class Reaped:
    teams: int = 0
    claimed: int = 0
    written: int = 0


def lost_event(team_id: str, record: Record, report: Report | None, now: float) -> UsageEvent:
    """The usage event of a request whose process died: what is known of it."""
    target = report.target if report is not None else record.target
    return UsageEvent(
        request_id=record.request_id,
        client_request_id=record.client_request_id,
        team_id=team_id,
        api_key_id=record.key_id or None,
        endpoint=record.endpoint,
        alias=record.alias,
        credential_id=target.credential_id or None,
        provider=target.provider,
        upstream_model=target.model,
        prompt_tokens=record.prompt,
        cached_tokens=0,
        cache_write_tokens=0,
        completion_tokens=report.completion if report is not None else 0,
        reasoning_tokens=0,
        estimated=True,
        status=LOST_STATUS,
        error_class=LOST_ERROR,
        streamed=record.streamed,
        attempts=1,
        latency_ms=max(0.0, now * 1000 - record.started_ms),
        ttfb_ms=None,
        overhead_ms=0.0,
        created_at=now,
        dialect=record.dialect,
    )


def recorded(team_id: str, request_ids: Sequence[str]) -> dict[str, int]:
    """The nanos the ledger recorded for those of ``request_ids`` it has."""
    from billing.models import UsageRecord

    rows = UsageRecord.objects.filter(team_id=team_id, request_id__in=list(request_ids))
    return {
        request_id: to_nanos(cost) if cost is not None else 0
        for request_id, cost in rows.values_list("request_id", "cost")
    }


def write(events: Sequence[UsageEvent]) -> None:
    with transaction.atomic():
        ingest(events)


def reap(
    where: Store | None = None,
    timing: Timing | None = None,
    writer: Callable[[Sequence[UsageEvent]], None] = write,
) -> Reaped:
    """One pass over the teams due; returns what it did."""
    where = where or store()
    timing = timing or Timing.from_settings()
    keys, args = script.due_call(TEAMS_PER_PASS)
    due = where.run(keys, args)
    result = Reaped()
    for team, seen in zip(due[::2], due[1::2], strict=True):
        result.teams += 1
        claimed, written = reap_team(where, _text(team), _text(seen), timing, writer)
        result.claimed += claimed
        result.written += written
    return result


def reap_team(
    where: Store,
    team_id: str,
    seen: str,
    timing: Timing,
    writer: Callable[[Sequence[UsageEvent]], None],
) -> tuple[int, int]:
    keep_ms = int(max(TOMBSTONE_SECONDS, 4 * timing.grace / 1000) * 1000)
    keys, args = script.lapsed_call(
        team_id, timing.grace, timing.confirm, keep_ms, RECORDS_PER_TEAM
    )
    reply = where.run(keys, args)
    next_look, wrong, count = int(reply[0]), int(reply[1]), int(reply[2])
    if wrong:
        log.warning(
            "recounted the requests in flight and money held of %d scopes of team %s",
            wrong,
            team_id,
        )
    now = time.time()
    found: list[tuple[str, Record, Report | None]] = []
    for i in range(count):
        member, raw_report, _mark = reply[3 + i * 3 : 6 + i * 3]
        try:
            found.append((_text(member), Record.parse(member), Report.parse(raw_report)))
        except (ValueError, TypeError):
            log.error("unreadable in-flight record of team %s: %r", team_id, member)
    # A process that died after its usage event was written but before its settle: the
    # ledger has the real usage, which is what the counters get; nothing more is written.
    in_ledger = recorded(team_id, [record.request_id for _, record, _ in found]) if found else {}
    items = []
    for member, record, report in found:
        if record.request_id in in_ledger:
            items.append(script.Reap(record, member, in_ledger[record.request_id], b""))
            continue
        target = report.target if report is not None else record.target
        completion = report.completion if report is not None else 0
        event = lost_event(team_id, record, report, now)
        items.append(
            script.Reap(
                record=record,
                member=member,
                cost=target.cost(record.prompt, completion),
                event=event.to_json(),
            )
        )
    pending: dict[str, bytes] = {}
    rest = reply[3 + count * 3 :]
    for request_id, raw in zip(rest[::2], rest[1::2], strict=True):
        pending[_text(request_id)] = raw if isinstance(raw, bytes) else str(raw).encode()
    claimed = 0
    if items:
        day, month = script.periods(now)
        keys, args = script.reap_call(team_id, items, timing.grace, timing.confirm, day, month)
        for item, status in zip(items, where.run(keys, args), strict=True):
            if int(status) == 1 and not item.event:
                claimed += 1
                log.info(
                    "request %s of team %s lost its relay process after its usage was "
                    "recorded; its limits settled from the ledger",
                    item.record.request_id,
                    team_id,
                )
            elif int(status) == 1:
                claimed += 1
                pending[item.record.request_id] = item.event
                log.warning(
                    "request %s of team %s lost its relay process; billed from its record "
                    "(%d prompt + reported completion tokens, estimated)",
                    item.record.request_id,
                    team_id,
                    item.record.prompt,
                )
    written = 0
    if pending:
        events = [UsageEvent.from_json(raw) for raw in pending.values()]
        writer(events)
        written = len(events)
        keys, args = script.emitted_call(team_id, list(pending))
        where.run(keys, args)
    keys, args = script.unindex_call(team_id, seen, next_look, timing.keep)
    where.run(keys, args)
    return claimed, written
