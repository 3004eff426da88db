"""The quota script's interface: its keys, the arguments of each call, and the record.

``admission.lua`` is the one quota algorithm (read it first: its header explains
every call and every key). This module is the only Python that knows its KEYS and
ARGV layout: each ``*_call`` function returns the (keys, args) of one call, which
the data plane (gateway/admission.py) sends over the pipelined Redis connection or
to the in-process store (billing/quota/local.py), and the control plane
(billing/quota/live.py, reconcile.py, reaper.py) through ``billing.quota.store``.

Every key of a team carries the team id as its hash tag (``{team}``), so one
call touches a single Redis Cluster slot; the reaper's index is ``{reap}``'s.

A request in flight is one member of the team's ``f`` sorted set, its *record*:
``"<request id> <key id> <json>"``. The script never parses the JSON (it only
finds the request id and the key id in it); the reaper reads it back with
``Record.parse`` to bill a request whose process died.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from billing.quota.snapshots import Limits

LUA = Path(__file__).with_name("admission.lua").read_text()

PERIODS = ("day", "month", "lifetime")
DUE = "bq:{reap}:due"
SEEN = "bq:{reap}:seen"

Call = tuple[list[str], list[Any]]


def base(team_id: str) -> str:
    return f"bq:{{{team_id}}}"


def state(team_id: str) -> str:
    """The hash with every limit's state of the team (its scopes are field prefixes)."""
    return base(team_id) + ":s"


def flight(team_id: str) -> str:
    return base(team_id) + ":f"


def lapsed(team_id: str) -> str:
    return base(team_id) + ":g"


def team_keys(team_id: str) -> list[str]:
    """f, s, g, p, x, e: the keys of the modes that follow a record."""
    b = base(team_id)
    return [b + ":f", b + ":s", b + ":g", b + ":p", b + ":x", b + ":e"]


def key_prefix(key_id: str) -> str:
    return f"k{key_id}:"


def credential_prefix(credential_id: str) -> str:
    return f"c{credential_id}:"


def fields(prefix: str, day: str, month: str) -> list[str]:
    """A scope's fields, in the order the script reads them."""
    return [prefix + name for name in ("r", "t", "d" + day, "m" + month, "l", "h")]


def periods(now: float | None = None) -> tuple[str, str]:
    """The day and month a spend counter belongs to (UTC)."""
    moment = time.gmtime(now)
    return (
        f"{moment.tm_year:04d}{moment.tm_mon:02d}{moment.tm_mday:02d}",
        f"{moment.tm_year:04d}{moment.tm_mon:02d}",
    )


def counters(day: str, month: str) -> tuple[str, str]:
    """A scope's fields (after its prefix) of the day's and the month's spend."""
    return "d" + day, "m" + month


def past_counters(now: float | None = None, days: int = 3) -> list[str]:
    """The counter fields of the few days and the month before ``now``'s: dropped when a
    scope is reconciled (older ones, of a scope idle for longer, stay until it is
    reconciled on such a day)."""
    moment = time.time() if now is None else now
    out = []
    for back in range(1, days + 1):
        out.append(counters(*periods(moment - back * 86400))[0])
    first = time.gmtime(moment)
    previous = (first.tm_year - 1, 12) if first.tm_mon == 1 else (first.tm_year, first.tm_mon - 1)
    out.append(f"m{previous[0]:04d}{previous[1]:02d}")
    return out


def cap(value: int | None) -> int:
    """A limit as the script reads it: -1 for none."""
    return -1 if value is None else value


def caps(limits: Limits) -> list[int]:
    return [
        cap(limits.rpm),
        cap(limits.tpm),
        cap(limits.concurrency),
        cap(limits.day),
        cap(limits.month),
        cap(limits.life),
    ]


# --- the record of a request in flight ------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Target:
    """Where a request went (or would go), and its prices in nanos per 1M tokens."""

    credential_id: str = ""
    provider: str = ""
    model: str = ""
    input: int = 0
    output: int = 0

    def cost(self, prompt: int, completion: int) -> int:
        total = prompt * self.input + completion * self.output
        return -(-total // 1_000_000)


@dataclass(frozen=True, slots=True)
class Record:
    """The durable record of an admitted request: what a reaper needs to bill it."""

    request_id: str
    key_id: str
    started_ms: int
    held: int  # nanos held in each scope that holds it
    prompt: int  # estimated prompt tokens
    team_held: bool  # the team's scope holds it and counts it in flight
    key_held: bool  # the key's scope does
    endpoint: str
    dialect: str
    alias: str
    streamed: bool
    target: Target  # the dearest candidate, until a renewal reports the real one
    client_request_id: str = ""  # the client's own id for it, when it sent one

    @property
    def flags(self) -> int:
        return int(self.team_held) | int(self.key_held) << 1

    def member(self) -> str:
        t = self.target
        payload = orjson.dumps(
            [
                self.started_ms,
                self.held,
                self.prompt,
                self.endpoint,
                self.dialect,
                self.alias,
                int(self.streamed),
                [t.credential_id, t.provider, t.model, t.input, t.output],
                self.client_request_id,
            ]
        )
        return f"{self.request_id} {self.key_id} {self.flags} {payload.decode()}"

    @classmethod
    def parse(cls, member: str | bytes) -> Record:
        text = member.decode() if isinstance(member, bytes) else member
        request_id, key_id, flags, payload = text.split(" ", 3)
        values = orjson.loads(payload)
        started, held, prompt, endpoint, dialect, alias, streamed, target = values[:8]
        return cls(
            request_id=request_id,
            key_id=key_id,
            started_ms=int(started),
            held=int(held),
            prompt=int(prompt),
            team_held=bool(int(flags) & 1),
            key_held=bool(int(flags) & 2),
            endpoint=str(endpoint),
            dialect=str(dialect),
            alias=str(alias),
            streamed=bool(streamed),
            target=Target(*target),
            client_request_id=str(values[8]) if len(values) > 8 else "",
        )


@dataclass(frozen=True, slots=True)
class Report:
    """What the process holding a request tells the record on renewal."""

    target: Target
    completion: int  # completion tokens streamed so far

    def dump(self) -> str:
        t = self.target
        return orjson.dumps(
            [t.credential_id, t.provider, t.model, t.input, t.output, self.completion]
        ).decode()

    @classmethod
    def parse(cls, raw: str | bytes) -> Report | None:
        if not raw:
            return None
        credential_id, provider, model, price_in, price_out, completion = orjson.loads(raw)
        return cls(Target(credential_id, provider, model, price_in, price_out), int(completion))


# --- calls ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Admit:
    """One request of an admit call."""

    record: str
    cost: int
    tokens: int
    key_id: str
    key: Limits | None  # None: the key has no limits (its scope is not passed)
    credentials: Mapping[str, Limits]  # the limited candidates' credentials
    every_target_limited: bool


def admit_call(
    *,
    team_id: str,
    requests: Sequence[Admit],
    team: Limits | None,
    granted: int | None,
    lease_ms: int,
    window_ms: int,
    day: str,
    month: str,
    prune_ms: int,
    noseed: bool = False,
) -> Call:
    """Admit ``requests`` of one team, in order, in one call. ``team`` is None for a team
    without limits (its scope is not passed); ``granted`` the prepaid credit, None when
    the team is not prepaid."""
    args: list[Any] = [
        "admit",
        lease_ms,
        window_ms,
        *counters(day, month),
        0 if team is None else 1,
        -1 if granted is None else granted,
        1 if noseed else 0,
        prune_ms,
        *caps(team or Limits()),
    ]
    keys: dict[str, int] = {}
    key_args: list[Any] = []
    credentials: dict[str, int] = {}
    credential_args: list[Any] = []
    request_args: list[Any] = [len(requests)]
    for request in requests:
        index = 0
        if request.key is not None:
            found = keys.get(request.key_id)
            if found is None:
                found = keys[request.key_id] = len(keys) + 1
                key_args += [key_prefix(request.key_id), *caps(request.key)]
            index = found
        candidates = []
        for credential_id, limits in request.credentials.items():
            position = credentials.get(credential_id)
            if position is None:
                position = credentials[credential_id] = len(credentials) + 1
                credential_args += [
                    credential_prefix(credential_id),
                    cap(limits.rpm),
                    cap(limits.tpm),
                ]
            candidates.append(position)
        request_args += [
            request.record,
            request.cost,
            request.tokens,
            index,
            1 if request.every_target_limited else 0,
            len(candidates),
            *candidates,
        ]
    args += [len(keys), *key_args, len(credentials), *credential_args, *request_args]
    return [flight(team_id), state(team_id), lapsed(team_id)], args


@dataclass(frozen=True, slots=True)
class Settle:
    """One request's settle: its record, what it cost, what to give back."""

    record: str
    request_id: str
    key_id: str
    cost: int
    held: int
    tokens_back: int
    used: int
    at_ms: int  # when its usage event was written: the event's created_at, in ms
    renewed: bool
    team_active: bool
    team_tpm: int | None
    key_active: bool
    key_tpm: int | None
    credential_id: str | None = None
    credential: Limits | None = None


def settle_call(
    team_id: str, items: Sequence[Settle], window_ms: int, day: str, month: str
) -> Call:
    """One call settling ``items`` (all of one team). Replies {status, skipped} per item
    (admission.lua)."""
    f, s, g, p, x, _ = team_keys(team_id)
    args: list[Any] = ["settle", window_ms, *counters(day, month), len(items)]
    for item in items:
        credential = item.credential if item.credential_id else None
        args += [
            item.record,
            item.request_id,
            item.cost,
            item.held,
            item.tokens_back,
            item.used,
            item.at_ms,
            1 if item.renewed else 0,
            1 if item.team_active else 0,
            cap(item.team_tpm),
            key_prefix(item.key_id),
            1 if item.key_active else 0,
            cap(item.key_tpm),
            credential_prefix(item.credential_id or "") if credential is not None else "",
            cap(credential.rpm) if credential is not None else -1,
            cap(credential.tpm) if credential is not None else -1,
        ]
    return [f, s, g, x, p], args


def renew_call(team_id: str, entries: Sequence[tuple[Record, str, str]], lease_ms: int) -> Call:
    """Renew leases: (record, its member, report: "" when unchanged)."""
    f, s, g, p, _, _ = team_keys(team_id)
    args: list[Any] = ["renew", lease_ms, len(entries)]
    for record, member, report in entries:
        args += [member, record.request_id, key_prefix(record.key_id), record.flags, report]
    return [f, s, g, p], args


def peek_call(
    team_id: str, key_id: str, window_ms: int, day: str, month: str, team: Limits, key: Limits
) -> Call:
    """Live use of the team and one key (the pages)."""
    keys = [flight(team_id), state(team_id)]
    args = ["peek", window_ms, *counters(day, month), key_prefix(key_id), key_id]
    args += [team.rpm or -1, team.tpm or -1, key.rpm or -1, key.tpm or -1]
    return keys, args


def reconcile_call(
    team_id: str,
    key_id: str | None,
    day: str,
    month: str,
    totals: Sequence[int],
    past: Sequence[str] = (),
    *,
    watermark_ms: int = 0,
    only_seeded: bool = False,
) -> Call:
    """Raise one scope's counters to the ledger's (day, month, lifetime) nanos of the
    events written before ``watermark_ms``, and drop its ``past`` counter fields.
    ``only_seeded``: leave a scope the store does not count alone (it seeds itself from
    the ledger when it next admits)."""
    prefix = "" if key_id is None else key_prefix(key_id)
    args = ["reconcile", prefix, *counters(day, month), *totals, 1 if only_seeded else 0]
    return [state(team_id)], [*args, watermark_ms, *past]


def lapsed_call(
    team_id: str, grace_ms: int, confirm_ms: int, keep_ms: int, limit: int, recount: int = 5000
) -> Call:
    """Move ended leases out of the live set, recount each scope's requests in flight and
    money held from the records (a team with at most ``recount`` of them), and list the
    records a reaper may take."""
    return team_keys(team_id), ["lapsed", grace_ms, confirm_ms, keep_ms, limit, recount]


@dataclass(frozen=True, slots=True)
class Reap:
    record: Record
    member: str
    cost: int
    event: bytes


def reap_call(
    team_id: str,
    items: Sequence[Reap],
    grace_ms: int,
    confirm_ms: int,
    day: str,
    month: str,
) -> Call:
    args: list[Any] = ["reap", grace_ms, confirm_ms, *counters(day, month), len(items)]
    for item in items:
        r = item.record
        args += [
            item.member,
            r.request_id,
            r.held,
            item.cost,
            1 if r.team_held else 0,
            key_prefix(r.key_id),
            1 if r.key_held else 0,
            item.event,
        ]
    return team_keys(team_id), args


def emitted_call(team_id: str, request_ids: Sequence[str]) -> Call:
    return [team_keys(team_id)[5]], ["emitted", *request_ids]


def index_call(teams: Mapping[str, int]) -> Call:
    """Tell the reapers to look at these teams by these times (ms)."""
    args: list[Any] = ["index", len(teams)]
    for team_id, due in teams.items():
        args += [team_id, due]
    return [DUE, SEEN], args


def due_call(limit: int) -> Call:
    return [DUE], ["due", limit]


def unindex_call(team_id: str, seen: Any, next_look: int, keep_ms: int) -> Call:
    return [DUE, SEEN], ["unindex", team_id, seen, next_look, keep_ms]
