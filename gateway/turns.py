"""What Baton remembers of an agent loop between its requests, for a short while.

An agent loop is one conversation sent again and again, each time with the previous
assistant turn's tool calls and their results appended. The ids of those tool calls tie
the requests together, so Baton keys what it remembers by them, per team:

- **where the turn was served** (the target): reasoning is bound to where it was produced
  (Anthropic's signed thinking is refused by another account, and its newer models bind a
  block to its conversation), so a loop's next requests go back to that target while it
  is healthy; and when a fallback must move the loop, the reasoning the new target cannot
  read is dropped rather than failing the request (``for_target``; the usage record says
  ``reasoning: dropped``);
- **the turn's reasoning**, for teams that allow it (``Team.remember_reasoning``, on by
  default): DeepSeek V4, Kimi and GLM in thinking mode refuse a tool-call turn whose
  ``reasoning_content`` was not passed back, and most OpenAI SDK apps drop the field (it is
  not in OpenAI's schema). Baton gives it back (``reasoning: restored``). It is encrypted
  under the team's data key, kept for ``BATON_TURN_MEMORY_SECONDS`` and never logged.

A request with no tool-call turn in its history costs nothing here; one with such turns
costs one Redis round trip (an MGET), and a turn that ends in tool calls one write, both
off the response's path. Without Redis (the embedded default) the same records live in
this process.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.conf import settings

from gateway.contexts import Target, TeamContext
from relay.envelope import DecryptionError, open_team_data, seal_team_data
from wire.providers.quirks import messages_quirks_for
from wire.translate.messages import BATON_SIGNATURE_PREFIX

log = logging.getLogger("baton.turns")

PURPOSE = "turn-reasoning"
MAX_TURNS_LOOKED_UP = 32  # assistant tool-call turns read back per request
LOCAL_ENTRIES = 10_000


@dataclass(slots=True)
class ToolTurn:
    """An assistant turn in a request's history that called tools."""

    index: int  # its position in ``messages``
    tool_id: str  # its first tool call's id: the key of what Baton remembers of it
    has_reasoning: bool


@dataclass(slots=True)
class Resumed:
    """What the memory said about a request's history."""

    body: dict[str, Any]
    produced_by: str | None = None  # the target that served the loop's latest turn
    restored: bool = False


@dataclass(slots=True)
class LocalStore:
    """The records without Redis: a bounded map with expiry, in this process."""

    entries: OrderedDict[str, tuple[float, bytes]] = field(default_factory=OrderedDict)

    def get(self, keys: Sequence[str]) -> list[bytes | None]:
        now = time.monotonic()
        out: list[bytes | None] = []
        for key in keys:
            entry = self.entries.get(key)
            out.append(entry[1] if entry is not None and entry[0] > now else None)
        return out

    def set(self, key: str, value: bytes, ttl: float) -> None:
        self.entries[key] = (time.monotonic() + ttl, value)
        self.entries.move_to_end(key)
        while len(self.entries) > LOCAL_ENTRIES:
            self.entries.popitem(last=False)


class TurnMemory:
    def __init__(self) -> None:
        self.redis: Any = None
        self.local = LocalStore()
        self.tasks: set[asyncio.Task[Any]] = set()

    @property
    def ttl(self) -> int:
        return int(settings.BATON_TURN_MEMORY_SECONDS)

    # --- reading ---------------------------------------------------------------------------
    async def resume(
        self, team: TeamContext, dialect: str, body: dict[str, Any], ordered: list[Target]
    ) -> tuple[Resumed, list[Target]]:
        """Look up the loop's earlier turns: put the target that served the latest one
        first (when it is among the healthy candidates) and give back the reasoning a
        chat client left out."""
        turns = tool_turns(dialect, body)
        if not turns:
            return Resumed(body), ordered
        turns = turns[-MAX_TURNS_LOOKED_UP:]
        try:
            records = await self._get([record_key(team.team_id, t.tool_id) for t in turns])
        except Exception:
            log.warning("turn memory unreachable; the loop is routed as a new one", exc_info=True)
            return Resumed(body), ordered
        resumed = Resumed(body)
        latest = _record(records[-1])
        if latest is not None:
            resumed.produced_by = latest.get("t")
            ordered = pin(ordered, resumed.produced_by)
        if dialect == "chat" and team.reasoning_key is not None:
            restored = self._restore(team, body, turns, records)
            if restored is not None:
                resumed.body, resumed.restored = restored, True
        return resumed, ordered

    def _restore(
        self,
        team: TeamContext,
        body: dict[str, Any],
        turns: list[ToolTurn],
        records: list[bytes | None],
    ) -> dict[str, Any] | None:
        assert team.reasoning_key is not None
        messages: list[Any] | None = None
        for turn, raw in zip(turns, records, strict=True):
            record = _record(raw)
            if turn.has_reasoning or record is None or not record.get("r"):
                continue
            try:
                text = open_team_data(
                    team.reasoning_key, record["r"], team_id=team.team_id, purpose=PURPOSE
                ).decode("utf-8")
            except (DecryptionError, UnicodeDecodeError):
                continue  # kept under an earlier data key: as if forgotten
            if messages is None:
                messages = list(body["messages"])
            messages[turn.index] = {**messages[turn.index], "reasoning_content": text}
        if messages is None:
            return None
        return {**body, "messages": messages}

    # --- writing ---------------------------------------------------------------------------
    def remember(
        self, team: TeamContext, target: Target, tool_ids: Sequence[str], reasoning: str | None
    ) -> None:
        """Record a turn that ended in tool calls: where it was served and (if the team
        allows it) its reasoning. Never blocks the response."""
        if not tool_ids:
            return
        record: dict[str, Any] = {"t": target.key}
        if reasoning and team.reasoning_key is not None:
            record["r"] = seal_team_data(
                team.reasoning_key, reasoning.encode("utf-8"), team_id=team.team_id, purpose=PURPOSE
            )
        value = orjson.dumps(record)
        keys = [record_key(team.team_id, tool_id) for tool_id in tool_ids]
        if self.redis is None:
            for key in keys:
                self.local.set(key, value, self.ttl)
            return
        task = asyncio.ensure_future(self._set(keys, value))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _get(self, keys: list[str]) -> list[bytes | None]:
        if self.redis is None:
            return self.local.get(keys)
        values: list[bytes | None] = await self.redis.mget(keys)
        return values

    async def _set(self, keys: list[str], value: bytes) -> None:
        try:
            pipe = self.redis.pipeline(transaction=False)
            for key in keys:
                pipe.set(key, value, ex=self.ttl)
            await pipe.execute()
        except Exception:
            log.warning("could not remember a turn (turn memory unreachable)", exc_info=True)


def record_key(team_id: str, tool_id: str) -> str:
    # The id is the client's text: hashed, so any length or character makes a sound key.
    digest = hashlib.sha256(tool_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"baton:turn:{{{team_id}}}:{digest}"


def _record(raw: bytes | None) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def pin(ordered: list[Target], target_key: str | None) -> list[Target]:
    """``ordered`` with the target that served the loop first, unless it is not there.
    (Targets cooling down are already last: pinning moves a healthy one only.)"""
    if target_key is None or not ordered or ordered[0].key == target_key:
        return ordered
    for i, target in enumerate(ordered):
        if target.key == target_key:
            return [target, *ordered[:i], *ordered[i + 1 :]]
    return ordered


def tool_turns(dialect: str, body: dict[str, Any]) -> list[ToolTurn]:
    """The assistant turns of a request's history that called tools, oldest first."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return []
    turns: list[ToolTurn] = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        if dialect == "chat":
            calls = message.get("tool_calls")
            if isinstance(calls, list) and calls and isinstance(calls[0], dict):
                tool_id = calls[0].get("id")
                if isinstance(tool_id, str) and tool_id:
                    has = message.get("reasoning_content") is not None or bool(
                        message.get("reasoning_details")
                    )
                    turns.append(ToolTurn(index, tool_id, has))
        elif dialect == "messages":
            content = message.get("content")
            if not isinstance(content, list):
                continue
            ids = [
                b.get("id")
                for b in content
                if isinstance(b, dict)
                and b.get("type") == "tool_use"
                and isinstance(b.get("id"), str)
            ]
            if ids:
                has = any(
                    isinstance(b, dict) and b.get("type") in ("thinking", "redacted_thinking")
                    for b in content
                )
                turns.append(ToolTurn(index, str(ids[0]), has))
    return turns


def for_target(
    dialect: str, egress: str, body: dict[str, Any], target: Target, produced_by: str | None
) -> tuple[dict[str, Any], bool]:
    """The body to send ``target``, without the reasoning it cannot read: (body, dropped).

    On a native Messages path earlier turns are sent as the client wrote them, unless
    the loop moved (``produced_by`` is another target) or a block carries Baton's own
    signature: a target that verifies signatures (Anthropic) then gets no thinking from
    elsewhere, and no target gets another account's ``redacted_thinking``. A chat client's
    ``thinking_blocks`` (signed Anthropic thinking) go only back to where they came from.
    """
    moved = produced_by is not None and produced_by != target.key
    if dialect == "messages" and egress == "messages":
        verifies = messages_quirks_for(target.upstream.provider).verifies_signatures
        stripped, dropped = _without_blocks(body, verifies=verifies, moved=moved)
        if dropped and verifies and "thinking" in stripped:
            # A tool loop that thinks must show its thinking on every turn: without the
            # blocks it cannot read, the target continues the loop without thinking.
            stripped = {k: v for k, v in stripped.items() if k != "thinking"}
        return stripped, dropped
    if dialect == "chat" and egress == "messages" and moved:
        return _without_thinking_blocks(body)
    return body, False


def _without_blocks(
    body: dict[str, Any], *, verifies: bool, moved: bool
) -> tuple[dict[str, Any], bool]:
    def unreadable(block: Any) -> bool:
        if not isinstance(block, dict):
            return False
        kind = block.get("type")
        if kind == "redacted_thinking":
            return moved
        if kind == "thinking" and verifies:
            signature = block.get("signature")
            return moved or (
                isinstance(signature, str) and signature.startswith(BATON_SIGNATURE_PREFIX)
            )
        return False

    messages = body.get("messages")
    if not isinstance(messages, list):
        return body, False
    changed = False
    out: list[Any] = []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if (
            isinstance(message, dict)
            and message.get("role") == "assistant"
            and isinstance(content, list)
            and any(unreadable(b) for b in content)
        ):
            message = {**message, "content": [b for b in content if not unreadable(b)]}
            changed = True
        out.append(message)
    return ({**body, "messages": out}, True) if changed else (body, False)


def _without_thinking_blocks(body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not any(
        isinstance(m, dict) and m.get("thinking_blocks") for m in messages
    ):
        return body, False
    out = [
        {k: v for k, v in m.items() if k != "thinking_blocks"} if isinstance(m, dict) else m
        for m in messages
    ]
    return {**body, "messages": out}, True


def turn_of_body(dialect: str, out: bytes) -> tuple[list[str], str | None]:
    """(tool-call ids, reasoning) of a non-streamed reply, as the client got it."""
    if b"tool" not in out:
        return [], None
    try:
        payload = orjson.loads(out)
    except orjson.JSONDecodeError:
        return [], None
    if not isinstance(payload, dict):
        return [], None
    if dialect == "messages":
        blocks = [b for b in payload.get("content") or () if isinstance(b, dict)]
        ids = [str(b["id"]) for b in blocks if b.get("type") == "tool_use" and b.get("id")]
        thinking = "".join(
            str(b.get("thinking") or "") for b in blocks if b.get("type") == "thinking"
        )
        return ids, thinking or None
    choices = payload.get("choices")
    message = (
        choices[0].get("message")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict)
        else None
    )
    if not isinstance(message, dict):
        return [], None
    calls = message.get("tool_calls") or ()
    ids = [str(c["id"]) for c in calls if isinstance(c, dict) and c.get("id")]
    reasoning = message.get("reasoning_content")
    return ids, reasoning if isinstance(reasoning, str) and reasoning else None
