"""The quota script's interface: its keys, and the arguments of each call.

``admission.lua`` is the one quota algorithm (read it first: its header explains
every call). This module is the only Python that knows its KEYS and ARGV
layout: the data plane (gateway/admission.py) sends the calls built here, over
the pipelined Redis connection or to the in-process store (billing/quota/local.py);
the pages read live use with the same script (billing/quota/live.py).

Every key of a team carries the team id as its hash tag (``{team}``), so one
call touches a single Redis Cluster slot.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from billing.quota.snapshots import Limits, TeamQuota

LUA = Path(__file__).with_name("admission.lua").read_text()

DAY_TTL = 3 * 86400
MONTH_TTL = 70 * 86400
PERIODS = ("day", "month", "lifetime")
SCOPE_KEYS = 7  # keys per scope (team, or one API key)


def scope_keys(team_id: str, scope: str, day: str, month: str) -> list[str]:
    """The seven keys of one scope ("t" for the team, "k:<id>" for a key)."""
    base = f"bq:{{{team_id}}}:{scope}"
    return [
        f"{base}:h",
        f"{base}:a",
        f"{base}:rpm",
        f"{base}:tpm",
        f"{base}:d:{day}",
        f"{base}:m:{month}",
        f"{base}:l",
    ]


def credential_keys(team_id: str, credential_id: str) -> list[str]:
    base = f"bq:{{{team_id}}}:c:{credential_id}"
    return [f"{base}:rpm", f"{base}:tpm"]


def periods(now: float | None = None) -> tuple[str, str]:
    """The day and month a spend counter belongs to (UTC)."""
    moment = time.gmtime(now)
    return (
        f"{moment.tm_year:04d}{moment.tm_mon:02d}{moment.tm_mday:02d}",
        f"{moment.tm_year:04d}{moment.tm_mon:02d}",
    )


def cap(value: int | None) -> int:
    """A limit as the script reads it: -1 for none."""
    return -1 if value is None else value


def request_keys(team_id: str, key_id: str, day: str, month: str) -> list[str]:
    """The team's scope, then the API key's: the first KEYS of admit and settle."""
    return scope_keys(team_id, "t", day, month) + scope_keys(team_id, "k:" + key_id, day, month)


def admit_args(
    *,
    hold_id: str,
    hold_ttl_ms: int,
    cost: int,
    tokens: int,
    window_ms: int,
    quota: TeamQuota,
    key_limits: Limits,
    credential_limits: Mapping[str, Limits],
    every_target_limited: bool,
) -> list[Any]:
    """ARGV of ``admit``; the KEYS are ``request_keys`` then ``credential_keys`` of each
    credential in ``credential_limits``, in the same order."""
    args: list[Any] = [
        "admit",
        hold_id,
        hold_ttl_ms,
        cost,
        tokens,
        window_ms,
        1 if quota.prepaid else 0,
        quota.granted,
        len(credential_limits),
        1 if every_target_limited else 0,
    ]
    for limits in (quota.limits, key_limits):
        args += [
            cap(limits.rpm),
            cap(limits.tpm),
            cap(limits.concurrency),
            cap(limits.day),
            cap(limits.month),
            cap(limits.life),
        ]
    for limits in credential_limits.values():
        args += [cap(limits.rpm), cap(limits.tpm)]
    return args


def settle_args(
    *,
    hold_id: str,
    cost: int,
    tokens_back: int,
    window_ms: int,
    team_tpm: int | None,
    key_tpm: int | None,
    credential: Limits | None = None,
    used: int = 0,
) -> list[Any]:
    """ARGV of ``settle``; KEYS are ``request_keys``, plus the credential's keys when
    ``credential`` (its limits) is given."""
    args: list[Any] = [
        "settle",
        hold_id,
        cost,
        tokens_back,
        window_ms,
        DAY_TTL,
        MONTH_TTL,
        cap(team_tpm),
        cap(key_tpm),
    ]
    if credential is not None:
        args += [cap(credential.rpm), cap(credential.tpm), used]
    return args


def peek_args(window_ms: int, team: Limits, key: Limits) -> list[Any]:
    """ARGV of ``peek`` (live use for the pages) over ``request_keys``."""
    return ["peek", window_ms, team.rpm or -1, team.tpm or -1, key.rpm or -1, key.tpm or -1]


def spend_counters(keys: Sequence[str]) -> list[str]:
    """The six spend counters among ``request_keys`` (team then key: day, month, lifetime)."""
    return [keys[4], keys[5], keys[6], keys[11], keys[12], keys[13]]


def seed_args(amounts: Sequence[tuple[int, str]]) -> list[Any]:
    """ARGV of ``seed``: (nanos, period) per counter, in the order of its KEYS."""
    args: list[Any] = ["seed"]
    for amount, period in amounts:
        args += [amount, {"day": DAY_TTL, "month": MONTH_TTL, "lifetime": 0}[period]]
    return args
