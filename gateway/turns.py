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

Responses clients (wire/dialects/responses.py) carry their reasoning themselves, in reasoning
items; what Baton keeps for them is where things were made:

- the turn ids are the ``call_id`` of each ``function_call`` and the ``id`` of each reasoning
  item, so a conversation goes back to the account whose ``encrypted_content`` it carries, and
  when it must move, ``for_target`` leaves out the reasoning the new target cannot read (or
  must not see: one account's ``encrypted_content`` never goes to another);
- for a translated target Baton makes the reasoning items itself; their ``encrypted_content``
  is Baton's own (``sealer``, under the team's data key, for teams that allow it), opened back
  into the item's text on the next turn (``resume``), so a strict chat provider gets its
  ``reasoning_content`` back byte for byte;
- a response a stateful target stored (``remember_response``): which target issued its id,
  for ``BATON_RESPONSE_IDS_SECONDS``, so a ``previous_response_id`` goes back there, natively
  and nowhere else, and one Baton cannot place is refused with OpenAI's
  ``previous_response_not_found``. Baton stores no responses itself.

A request with no tool-call turn in its history costs nothing here; one with such turns
costs one Redis round trip (an MGET), and a turn that ends in tool calls one write, both
off the response's path. Without Redis (the embedded default) the same records live in
this process.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from django.conf import settings

from gateway.contexts import Target, TeamContext
from gateway.errors import RelayError
from gateway.redis_pipe import PipelinedRedis
from relay.envelope import DecryptionError, open_team_data, seal_team_data
from wire.providers.quirks import messages_quirks_for, responses_quirks_for
from wire.providers.responses_native import stored_response_id
from wire.translate.messages import BATON_SIGNATURE_PREFIX
from wire.translate.responses import (
    BATON_ID,
    BATON_REASONING_PREFIX,
    is_baton_reasoning,
    reasoning_text,
)

log = logging.getLogger("baton.turns")

PURPOSE = "turn-reasoning"
RESPONSES_PURPOSE = "responses-reasoning"  # Baton's own encrypted_content
MAX_TURNS_LOOKED_UP = 32  # assistant tool-call turns read back per request
LOCAL_ENTRIES = 10_000
# The longest a reply waits for its turn to be written before going out without it (the
# turn is then routed as a new loop: the degraded mode of an unreachable Redis).
TURN_WRITE_TIMEOUT = 0.5


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
    # Responses: the target each item of the history was made by (item or call id -> key).
    sources: dict[str, str] = field(default_factory=dict)


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
        self.redis: Any = None  # redis-py's client: reads, and the rare deletes
        self.writer: PipelinedRedis | None = None  # writes on the reply's path
        self.local = LocalStore()

    @property
    def ttl(self) -> int:
        return int(settings.BATON_TURN_MEMORY_SECONDS)

    # --- reading ---------------------------------------------------------------------------
    async def resume(
        self, team: TeamContext, dialect: str, body: dict[str, Any], ordered: list[Target]
    ) -> tuple[Resumed, list[Target]]:
        """Look up the loop's earlier turns: put the target that served the latest one
        first (when it is among the healthy candidates) and give back the reasoning a
        chat client left out. A Responses ``previous_response_id`` goes to the target that
        issued it, and only there (RelayError when Baton cannot place it)."""
        if dialect == "responses":
            previous = body.get("previous_response_id")
            if isinstance(previous, str):
                return await self._continue(team, body, previous, ordered)
            body = open_reasoning(team, body)
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
        if dialect == "responses":
            for turn, raw in zip(turns, records, strict=True):
                record = _record(raw)
                if record is not None and isinstance(record.get("t"), str):
                    resumed.sources[turn.tool_id] = record["t"]
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

    async def _continue(
        self, team: TeamContext, body: dict[str, Any], previous: str, ordered: list[Target]
    ) -> tuple[Resumed, list[Target]]:
        """A follow-up by ``previous_response_id``: only the target that stored that response
        can continue it, natively."""
        try:
            record = await self.issuer(team, previous)
        except Exception:
            log.warning("turn memory unreachable; previous_response_id cannot be placed")
            raise previous_not_found(
                previous, "Baton could not reach its record of where responses were stored"
            ) from None
        if record is None:
            if BATON_ID in previous:
                why = (
                    "Baton made it through Chat Completions for a target without its own "
                    "Responses endpoint, and keeps no responses: send the whole conversation "
                    "in 'input'"
                )
            else:
                why = (
                    "Baton has no record of it: previous_response_id works only with responses "
                    "that a stateful provider's own Responses endpoint stored (store: true) "
                    "for this team; stateless and translated targets keep none, so send the "
                    "whole conversation in 'input'"
                )
            raise previous_not_found(previous, why)
        issued_by = str(record["t"])
        credential = issued_by.partition(":")[0]
        native = [t for t in ordered if "responses" in t.upstream.natives]
        match = next((t for t in native if t.key == issued_by), None) or next(
            (t for t in native if t.credential_id == credential), None
        )
        if match is None:
            issuer = issuing_target(team, issued_by)
            name = f"credential {issuer.credential_name!r}" if issuer else "a credential"
            raise previous_not_found(
                previous,
                f"it was stored by {name} that does not serve this model here (or is "
                "disabled); ask for the model that made it, or send the whole conversation "
                "in 'input'",
            )
        return Resumed(body, produced_by=match.key), [match]

    async def issuer(self, team: TeamContext, response_id: str) -> dict[str, Any] | None:
        """Which target stored a response (``{"t": target key, "a": alias}``), or None."""
        [raw] = await self._get([response_key(team.team_id, response_id)])
        record = _record(raw)
        return record if record is not None and isinstance(record.get("t"), str) else None

    # --- writing ---------------------------------------------------------------------------
    def notes(
        self, team: TeamContext, target: Target, alias: str, egress: str, keep_reasoning: bool
    ) -> TurnNotes:
        """What one reply from ``target`` tells the memory, written as the reply goes out."""
        stored = (
            functools.partial(self.remember_response, team, target, alias)
            if egress == "responses"
            else None
        )
        return TurnNotes(functools.partial(self.remember, team, target), stored, keep_reasoning)

    async def remember(
        self, team: TeamContext, target: Target, tool_ids: Sequence[str], reasoning: str | None
    ) -> None:
        """Record a turn that called tools: where it was served and (if the team allows it)
        its reasoning. Awaited before the client can see the tool call's id: an agent answers
        a tool call at once, and its next request must find this record."""
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
        await self._set(keys, value, self.ttl)

    async def remember_response(
        self, team: TeamContext, target: Target, alias: str, response_id: str
    ) -> None:
        """Record which target stored a response (the id and the target only, no content).
        Awaited before the reply ends, so that a follow-up naming it finds it."""
        value = orjson.dumps({"t": target.key, "a": alias})
        ttl = int(settings.BATON_RESPONSE_IDS_SECONDS)
        key = response_key(team.team_id, response_id)
        if self.redis is None:
            self.local.set(key, value, ttl)
            return
        await self._set([key], value, ttl)

    async def forget_response(self, team: TeamContext, response_id: str) -> None:
        """The upstream deleted the response: a previous_response_id can no longer name it."""
        key = response_key(team.team_id, response_id)
        if self.redis is None:
            self.local.entries.pop(key, None)
            return
        try:
            await self.redis.delete(key)
        except Exception:
            log.warning("could not forget a deleted response (turn memory unreachable)")

    async def _get(self, keys: list[str]) -> list[bytes | None]:
        if self.redis is None:
            return self.local.get(keys)
        values: list[bytes | None] = await self.redis.mget(keys)
        return values

    async def _set(self, keys: list[str], value: bytes, ttl: int) -> None:
        try:
            if self.writer is not None:
                writer = self.writer
                await asyncio.gather(*(writer.execute("SET", k, value, "EX", ttl) for k in keys))
                return
            pipe = self.redis.pipeline(transaction=False)
            for key in keys:
                pipe.set(key, value, ex=ttl)
            await pipe.execute()
        except Exception:
            log.warning("could not remember a turn (turn memory unreachable)", exc_info=True)


class TurnNotes:
    """Writes what a reply tells the turn memory before the client can act on it: the ids of
    its tool calls (with the reasoning before them) and a stored response's id. A client
    that learns an id sends its follow-up at once, so the write is awaited before the bytes
    naming the id go out; it costs one Redis round trip on a turn that calls tools."""

    __slots__ = ("keep_reasoning", "remember", "seen", "stored")

    def __init__(
        self,
        remember: Callable[[Sequence[str], str | None], Awaitable[None]],
        stored: Callable[[str], Awaitable[None]] | None,
        keep_reasoning: bool,
    ) -> None:
        self.remember = remember
        self.stored = stored
        self.keep_reasoning = keep_reasoning
        self.seen = 0  # tool ids already written

    def pending(self, reply: Any) -> bool:
        """Does ``reply`` (a stream translator so far) carry something not yet written?"""
        return len(reply.tool_ids) > self.seen or (
            self.stored is not None and reply.stored_response is not None
        )

    async def write(self, reply: Any) -> None:
        await self.write_turn(reply.tool_ids, reply.reasoning_parts, reply.stored_response)

    async def write_turn(
        self, tool_ids: Sequence[str], reasoning: Sequence[str] | None, stored: str | None
    ) -> None:
        if self.stored is not None and stored is not None:
            record, self.stored = self.stored, None
            await record(stored)
        if len(tool_ids) > self.seen:
            # Chat reasoning comes before a turn's tool calls: what was seen so far is all.
            text = "".join(reasoning) if self.keep_reasoning and reasoning else None
            new, self.seen = tool_ids[self.seen :], len(tool_ids)
            await self.remember(new, text)


def record_key(team_id: str, tool_id: str) -> str:
    # The id is the client's text: hashed, so any length or character makes a sound key.
    digest = hashlib.sha256(tool_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"baton:turn:{{{team_id}}}:{digest}"


def response_key(team_id: str, response_id: str) -> str:
    digest = hashlib.sha256(response_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"baton:resp:{{{team_id}}}:{digest}"


def previous_not_found(response_id: str, why: str) -> RelayError:
    """OpenAI's refusal of an unknown ``previous_response_id``, saying why Baton cannot
    continue it."""
    return RelayError(
        400,
        f"Previous response with id {response_id!r} not found: {why}.",
        param="previous_response_id",
        code="previous_response_not_found",
    )


def issuing_target(team: TeamContext, target_key: str) -> Target | None:
    """The team's target with this key (a credential and a model), if it is still enabled."""
    credential, _, model = target_key.partition(":")
    for group in (*team.routes.values(), *team.offered.values()):
        for target in group:
            if target.key == target_key:
                return target
    for group in team.by_prefix.values():
        for target in group:
            if target.credential_id == credential:
                return replace(target, upstream=replace(target.upstream, model=model))
    return None


def sealer(team: TeamContext) -> Callable[[str], str] | None:
    """How Baton seals the reasoning it hands a Responses client (its ``encrypted_content``):
    under the team's data key, for teams that let Baton keep reasoning; None otherwise."""
    key = team.reasoning_key
    if key is None:
        return None

    def seal(text: str) -> str:
        return seal_team_data(
            key, text.encode("utf-8"), team_id=team.team_id, purpose=RESPONSES_PURPOSE
        )

    return seal


def open_reasoning(team: TeamContext, body: dict[str, Any]) -> dict[str, Any]:
    """The body with each reasoning item Baton sealed given its text back, as
    ``reasoning_text`` content (what the pivot reads first); its ``encrypted_content`` stays,
    marking it as Baton's. One the key cannot open (another team's, an earlier data key) is
    left as it is: its summary still shows the text."""
    items = body.get("input")
    key = team.reasoning_key
    if key is None or not isinstance(items, list):
        return body
    opened: list[Any] | None = None
    for i, item in enumerate(items):
        sealed = item.get("encrypted_content") if isinstance(item, dict) else None
        if not isinstance(sealed, str) or not sealed.startswith(BATON_REASONING_PREFIX):
            continue
        try:
            text = open_team_data(
                key,
                sealed[len(BATON_REASONING_PREFIX) :],
                team_id=team.team_id,
                purpose=RESPONSES_PURPOSE,
            ).decode("utf-8")
        except (DecryptionError, UnicodeDecodeError):
            continue
        if opened is None:
            opened = list(items)
        opened[i] = {**item, "content": [{"type": "reasoning_text", "text": text}]}
    return body if opened is None else {**body, "input": opened}


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
    """The assistant turns of a request's history that called tools, oldest first (for
    Responses, every tool call and reasoning item, by ``call_id`` and ``id``)."""
    if dialect == "responses":
        return _response_turns(body)
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


def _response_turns(body: dict[str, Any]) -> list[ToolTurn]:
    items = body.get("input")
    if not isinstance(items, list):
        return []
    turns: list[ToolTurn] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "reasoning":
            turn_id = item.get("id")
        elif kind in ("function_call", "custom_tool_call"):
            turn_id = item.get("call_id")
        else:
            continue
        if isinstance(turn_id, str) and turn_id:
            turns.append(ToolTurn(index, turn_id, kind == "reasoning"))
    return turns


def for_target(
    dialect: str,
    egress: str,
    body: dict[str, Any],
    target: Target,
    produced_by: str | None,
    sources: dict[str, str] | None = None,
) -> tuple[dict[str, Any], bool]:
    """The body to send ``target``, without the reasoning it cannot read: (body, dropped).

    On a native Messages path earlier turns are sent as the client wrote them, unless
    the loop moved (``produced_by`` is another target) or a block carries Baton's own
    signature: a target that verifies signatures (Anthropic) then gets no thinking from
    elsewhere, and no target gets another account's ``redacted_thinking``. A chat client's
    ``thinking_blocks`` (signed Anthropic thinking) go only back to where they came from.
    """
    moved = produced_by is not None and produced_by != target.key
    if dialect == "responses":
        if egress == "responses":
            return _native_reasoning(body, target, moved, sources or {})
        return body, _unreadable_reasoning(body)
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


def _native_reasoning(
    body: dict[str, Any], target: Target, moved: bool, sources: dict[str, str]
) -> tuple[dict[str, Any], bool]:
    """A Responses history for a native target: reasoning made anywhere else (another
    account, Baton's pivot) loses its ``encrypted_content``, and is left out whole where the
    target reads only its own (OpenAI)."""
    items = body.get("input")
    if not isinstance(items, list):
        return body, False
    opaque = responses_quirks_for(target.upstream.provider).opaque_reasoning
    out: list[Any] = []
    dropped = False
    for item in items:
        if isinstance(item, dict) and item.get("type") == "reasoning":
            source = sources.get(str(item.get("id")))
            foreign = (
                is_baton_reasoning(item)
                or (source is not None and source != target.key)
                or (source is None and moved)
            )
            if foreign and opaque:
                dropped = True
                continue
            if foreign and "encrypted_content" in item:
                dropped = True
                item = {k: v for k, v in item.items() if k != "encrypted_content"}
        out.append(item)
    return ({**body, "input": out}, True) if dropped else (body, False)


def _unreadable_reasoning(body: dict[str, Any]) -> bool:
    """Whether a Responses history sent through the chat pivot holds reasoning it cannot read
    (a provider's ``encrypted_content`` with no text shown): the pivot leaves it out, and
    turns thinking off when a tool-call turn is left without reasoning so."""
    items = body.get("input")
    return isinstance(items, list) and any(
        isinstance(item, dict)
        and item.get("type") == "reasoning"
        and isinstance(item.get("encrypted_content"), str)
        and reasoning_text(item) is None
        for item in items
    )


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
    """(tool-call ids, reasoning) of a non-streamed reply, as the client got it (for
    Responses: its call and reasoning item ids)."""
    if dialect == "responses":
        return _response_ids(out), None
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


def _response_ids(out: bytes) -> list[str]:
    try:
        payload = orjson.loads(out)
    except orjson.JSONDecodeError:
        return []
    output = payload.get("output") if isinstance(payload, dict) else None
    ids: list[str] = []
    for item in output if isinstance(output, list) else ():
        if not isinstance(item, dict):
            continue
        turn_id = item.get("id") if item.get("type") == "reasoning" else item.get("call_id")
        if item.get("type") in ("reasoning", "function_call", "custom_tool_call") and isinstance(
            turn_id, str
        ):
            ids.append(turn_id)
    return ids


def stored_response(egress: str, target: Target, out: bytes) -> str | None:
    """The id of a non-streamed response a native target stored, if it did."""
    if egress != "responses":
        return None
    try:
        payload = orjson.loads(out)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(payload, dict):
        return None
    return stored_response_id(payload, responses_quirks_for(target.upstream.provider))
