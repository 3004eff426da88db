"""The data plane: ``/v1`` as a lean ASGI app.

One request, top to bottom in ``RelayApp.relay``, whatever the client's dialect
(Chat Completions, Anthropic Messages, OpenAI Responses; wire/dialects/):
authenticate -> validate -> admit -> route -> send (with fallback) -> relay -> settle.
The admit step (gateway/admission.py) checks every limit and holds the
estimated cost in one Redis round trip; settle turns the hold into the real cost.
A target that speaks the client's dialect gets the request as it is; any other is
reached through the chat pivot (gateway/routing.py ``adapter_for``). Errors go back in
the client's dialect.

Everything a warm request needs comes from memory (gateway/cache.py); the
upstream is reached through one pooled aiohttp session whose connector
re-checks every address it connects to (gateway/upstream.py, relay/netguard.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import aiohttp
import orjson
from django.conf import settings

from billing.events import UsageEvent
from config import client_address
from config.logging import REQUEST_ID
from config.redis_clients import async_client, describe
from gateway import heap, observability, routing, turns
from gateway.admission import Admission
from gateway.cache import RelayCache
from gateway.call import Call
from gateway.contexts import KeyContext, Target, TeamContext
from gateway.cooldown import Cooldowns
from gateway.errors import RelayError, invalid_key, model_not_found
from gateway.metering import DatabaseSink, RedisStreamSink, Sink
from gateway.redis_pipe import PipelinedRedis
from gateway.redis_topology import pipelined
from gateway.turns import TURN_WRITE_TIMEOUT, Resumed, TurnMemory, TurnNotes
from gateway.upstream import Upstreams
from wire.base import Adapter
from wire.dialects import CHAT, MESSAGES, RESPONSES, Ask, Dialect, DialectError, Refusal
from wire.providers import Endpoint, UpstreamError
from wire.tokens import PromptTokens, prompt_token_bound

log = logging.getLogger("baton.relay")

ENDPOINTS: dict[str, tuple[Dialect, Endpoint]] = {
    "/v1/chat/completions": (CHAT, "chat"),
    "/v1/completions": (CHAT, "completions"),
    "/v1/embeddings": (CHAT, "embeddings"),
    "/v1/messages": (MESSAGES, "messages"),
    "/v1/messages/count_tokens": (MESSAGES, "count_tokens"),
    "/v1/responses": (RESPONSES, "responses"),
}
# GET and DELETE /v1/responses/{id} (and GET .../input_items): the stored response, asked of
# the target that stored it (RelayApp.stored_response).
STORED_RESPONSES = "/v1/responses/"
STORED_QUERY = frozenset({"include", "include[]", "after", "before", "limit", "order"})
# Client headers a native Messages target gets as the client sent them.
FORWARDED = {"messages": (b"anthropic-version", b"anthropic-beta")}
JSON = (b"content-type", b"application/json")
MAX_JSON_DEPTH = 254  # the deepest JSON orjson writes (its serialiser's recursion limit)
# Bodies larger than this have their prompt counted in a worker thread (RelayApp.count_prompt).
COUNT_IN_THREAD_BYTES = 256 * 1024
# Aliases and upstream models have at most 128; "credential-name/model" adds up to 81.
MAX_MODEL_CHARS = 256
# A client's own request id (echoed and stored) is at most this long.
MAX_CLIENT_REQUEST_ID = 128
# Left as they are in a header value: visible ASCII but "%", which marks the escapes.
_HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")
SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class ClientGone(Exception):
    """The client disconnected; nothing more can be sent."""


class RelayApp:
    def __init__(self) -> None:
        self.cache = RelayCache()
        self.cooldowns = Cooldowns()
        self.admission = Admission(self.cooldowns, self.cache.db)
        self.turns = TurnMemory()
        self.upstreams = Upstreams(self.cooldowns)
        self.redis: Any = None
        self.sink: Sink | None = None
        self.tasks: list[asyncio.Task[Any]] = []
        self.open_streams = 0
        self._start_lock: asyncio.Lock | None = None
        self.lifecycle = observability.Lifecycle()

    # --- lifecycle --------------------------------------------------------------
    async def startup(self) -> None:
        self.upstreams.start()
        if settings.REDIS_URL:
            # One server, Sentinel or Cluster alike (config/redis_clients.py).
            log.info("redis: %s", describe(settings.REDIS_URL))
            # The sink's WAIT (gateway/metering.py) may take its whole timeout on this client.
            timeout = 2 + settings.BATON_USAGE_WAIT_TIMEOUT_MS / 1000
            self.redis = async_client(
                settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=2
            )
            self.sink = RedisStreamSink(
                self.redis,
                url=settings.REDIS_URL,
                streams=settings.BATON_USAGE_STREAMS,
                replicas=settings.BATON_USAGE_WAIT_REPLICAS,
                wait_ms=settings.BATON_USAGE_WAIT_TIMEOUT_MS,
            )
            self.turns.redis = self.redis
            # Writes on the reply's path go over one pipelined connection: redis-py's client
            # costs several times the CPU per command (BENCHMARKS.md, choices). On a cluster
            # they stay on redis-py's client, which routes each key to its primary.
            writer = pipelined(settings.REDIS_URL, TURN_WRITE_TIMEOUT)
            self.turns.writer = writer if isinstance(writer, PipelinedRedis) else None
            self.tasks.append(asyncio.create_task(self._watch()))
        else:
            self.sink = DatabaseSink()
        await self.sink.start()
        observability.start(self)
        heap.freeze_startup_heap()

    async def _watch(self) -> None:
        """Cache versions and shared cooldowns, a few times a second."""
        await self.cache.watch(self.redis, also=self.cooldowns.sync)

    async def shutdown(self) -> None:
        for task in self.tasks:
            task.cancel()
        if self.sink is not None:
            await self.sink.stop()  # writes what is pending, which sends its settles
            await observability.flush_remaining(self.sink)
        await self.admission.close()
        if self.sink is not None:
            await self.sink.close()
            await observability.stop(self)
        await self.upstreams.close()
        if self.turns.writer is not None:
            await self.turns.writer.aclose()
        if self.redis is not None:
            await self.redis.aclose()

    async def ensure_started(self) -> None:
        if self.upstreams.started:
            return
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if not self.upstreams.started:
                await self.startup()

    async def lifespan(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.ensure_started()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # --- entry --------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.ensure_started()
        call = Call(
            request_id="req_" + uuid.uuid4().hex,
            started=time.perf_counter(),
        )
        REQUEST_ID.set(call.request_id)
        call.client_request_id = client_request_id(scope["headers"])
        try:
            path, method = scope["path"], scope["method"]
            route = ENDPOINTS.get(path)
            if route is not None:
                call.dialect, endpoint = route
                if method != "POST":
                    raise RelayError(405, f"Use POST for {path}.", code="method_not_allowed")
                await self.relay(scope, receive, send, call, endpoint)
            elif path.startswith(STORED_RESPONSES):
                call.dialect = RESPONSES
                await self.stored_response(scope, send, call, path[len(STORED_RESPONSES) :])
            elif path == "/v1/models" or path.startswith("/v1/models/"):
                # Claude Code's model discovery sends anthropic-version: Anthropic's list shape.
                if any(name == b"anthropic-version" for name, _ in scope["headers"]):
                    call.dialect = MESSAGES
                if method != "GET":
                    raise RelayError(405, f"Use GET for {path}.", code="method_not_allowed")
                await self.models(
                    scope, send, call, path[len("/v1/models/") :] if path != "/v1/models" else None
                )
            else:
                raise RelayError(404, f"Unknown endpoint {method} {path}.", code="unknown_url")
        except RelayError as exc:
            call.status = call.dialect.error_status(refusal_of(exc))
            call.error_class = call.error_class or exc.code or exc.type
            await self.send_error(send, call, exc)
        except ClientGone:
            pass
        except Exception:
            log.exception("relay request %s failed", call.request_id)
            await self.send_error(
                send,
                call,
                RelayError(
                    500, "Baton hit an internal error.", type="server_error", code="internal_error"
                ),
            )
        finally:
            observability.record(call)

    # --- the hot path -------------------------------------------------------------
    async def relay(
        self, scope: dict[str, Any], receive: Any, send: Any, call: Call, endpoint: Endpoint
    ) -> None:
        call.endpoint = endpoint
        # 1. Authenticate.
        key = await self.authenticate(scope)
        call.key = key
        try:
            # 2. Validate.
            raw = await read_body(receive, scope)
            body = self.parse_body(raw)
            ask = self.validate(call.dialect, endpoint, body)
            model = call.alias = ask.model
            if not key.allows_model(model):
                raise model_not_found(model)
            # 3. Admit.
            team = await self.cache.team(key.team_id)
            call.hold = await self.admission.admit(
                call.request_id,
                key,
                team,
                ask,
                endpoint,
                lambda: self.count_prompt(call.dialect, body, len(raw)),
                dialect=call.dialect.name,
                client_request_id=call.client_request_id,
            )
            # 4. Route.
            targets = routing.candidates(team, model)
            if targets is None:
                raise model_not_found(model)
            if not targets:
                raise RelayError(
                    503,
                    f"No enabled provider credential serves {model!r}.",
                    type="server_error",
                    code="no_upstream",
                )
            ordered = routing.order(targets, self.cooldowns)[: settings.BATON_MAX_ATTEMPTS]
            # An agent loop goes back to where its earlier turns were served (gateway/turns.py).
            resumed, ordered = await self.turns.resume(team, call.dialect.name, body, ordered)
            body = resumed.body
            if resumed.restored:
                call.reasoning = "restored"
            # 5-6. Send (with fallback) and relay.
            if endpoint == "count_tokens":
                await self.count_tokens(scope, send, call, body, ask, ordered)
            else:
                await self.send_with_fallback(
                    scope, receive, send, call, team, endpoint, body, ask, ordered, resumed
                )
        except RelayError as exc:
            call.status = call.dialect.error_status(refusal_of(exc))  # as the client sees it
            call.error_class = exc.code or exc.type
            raise
        finally:
            # 7. Settle.
            self.settle(call, locals().get("body"))

    @staticmethod
    async def count_prompt(dialect: Dialect, body: dict[str, Any], size: int) -> PromptTokens:
        """The prompt's realistic estimate and upper bound (wire/tokens.py). Both are linear
        in the body; the bound's regex scan of non-ASCII text costs up to about 75 ns a byte
        (text made only of characters NFKC lengthens), so a large body is counted in a
        worker thread, where it takes the GIL in slices instead of stalling the loop."""

        def count() -> PromptTokens:
            return PromptTokens(
                estimate=dialect.estimate_prompt_tokens(body), bound=prompt_token_bound(body)
            )

        if size > COUNT_IN_THREAD_BYTES:
            return await asyncio.to_thread(count)
        return count()

    async def authenticate(self, scope: dict[str, Any]) -> KeyContext:
        presented = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer":
                    presented = token.strip()
            elif name in (b"api-key", b"x-api-key") and presented is None:
                presented = value.decode("latin-1").strip()
        if not presented:
            raise invalid_key("Missing API key. Send it as 'Authorization: Bearer <key>'.")
        key = await self.cache.key(presented)
        if key is None:
            raise invalid_key()
        # The address is resolved only for keys with an allow-list (no cost otherwise).
        client_ip = client_address.from_scope(scope) if key.networks else None
        refusal = key.refusal(client_ip, time.time())
        if refusal is not None:
            if "address" in refusal:
                raise RelayError(403, refusal, type="permission_error", code="ip_not_allowed")
            raise invalid_key(refusal)
        self.cache.touch(key)
        return key

    @staticmethod
    def parse_body(raw: bytes) -> dict[str, Any]:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise RelayError(
                400, f"The request body is not valid JSON: {exc.msg}.", code="invalid_json"
            ) from exc
        if not isinstance(body, dict):
            raise RelayError(400, "The request body must be a JSON object.", code="invalid_json")
        # orjson reads 1,024 levels but writes only MAX_JSON_DEPTH, and the body is written
        # again for the upstream: refuse deeper bodies now, before admission. A body this
        # short cannot be that deep; writing a longer one once costs about 0.5 us for a 2 KB
        # chat body and 0.1-0.2 ms for 1 MB (a fifth to a tenth of parsing it).
        if len(raw) > 2 * MAX_JSON_DEPTH:
            try:
                orjson.dumps(body)
            except orjson.JSONEncodeError:
                raise RelayError(
                    400,
                    f"The request body nests JSON deeper than {MAX_JSON_DEPTH} levels.",
                    code="invalid_json",
                ) from None
        return body

    @staticmethod
    def validate(dialect: Dialect, endpoint: Endpoint, body: dict[str, Any]) -> Ask:
        """What Baton itself reads of the request, by its dialect (model, stream, output cap).
        The rest is the provider's to judge (or the translation's, where Baton converts it)."""
        model = body.get("model")
        # It is routed on, sent upstream, logged and echoed in x-baton-model.
        if isinstance(model, str) and (len(model) > MAX_MODEL_CHARS or not model.isprintable()):
            raise RelayError(
                400,
                f"'model' must be at most {MAX_MODEL_CHARS} printable characters.",
                param="model",
                code="invalid_model",
            )
        try:
            return dialect.ask(endpoint, body)
        except DialectError as exc:
            raise RelayError(400, exc.message, param=exc.param, code=exc.code) from None

    async def send_with_fallback(
        self,
        scope: dict[str, Any],
        receive: Any,
        send: Any,
        call: Call,
        team: TeamContext,
        endpoint: Endpoint,
        body: dict[str, Any],
        ask: Ask,
        ordered: list[Target],
        resumed: Resumed,
    ) -> None:
        assert self.upstreams.started
        last_error: UpstreamError | None = None
        forward = forwarded_headers(scope, call.dialect)
        for target in ordered:
            call.attempts += 1
            call.target = target
            if call.hold is not None:
                call.hold.target = target  # reported with the lease: where it went
            adapter, call.egress = routing.adapter_for(
                call.dialect, target, ask, turns.sealer(team)
            )
            # Reasoning bound to another target is not sent where it cannot be read.
            sent, dropped = turns.for_target(
                call.dialect.name, call.egress, body, target, resumed.produced_by, resumed.sources
            )
            if dropped:
                call.reasoning = "dropped"
            call.notes = self.turns.notes(
                team, target, call.alias, call.egress, keep_reasoning=call.dialect is CHAT
            )
            try:
                request = adapter.build_request(
                    endpoint, sent, target.upstream, stream=ask.stream, forward=forward
                )
            except UpstreamError as exc:
                last_error = exc
                if exc.retryable:
                    continue
                break
            sent_at = time.perf_counter()
            try:
                # asyncio.timeout, not wait_for: no extra task and loop turn per request.
                async with asyncio.timeout(settings.BATON_FIRST_BYTE_TIMEOUT):
                    response = await self.upstreams.send(target, request.method, request.url,
                                                        request.headers, request.body)  # fmt: skip
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                last_error = self.upstreams.connection_error(target, exc)
                observability.upstream_error(target.upstream.provider, last_error.code)
                call.upstream_seconds += time.perf_counter() - sent_at
                continue
            try:
                if response.status >= 400:
                    raw = await response.content.read(1 << 20)
                    error = adapter.parse_error(response.status, raw, response.headers)
                    last_error = self.upstreams.failed(target, error)
                    call.upstream_seconds += time.perf_counter() - sent_at
                    if error.retryable:
                        continue
                    break
                if ask.stream:
                    failure = await self.relay_stream(
                        receive, send, call, adapter, target, response, endpoint, body, ask, sent_at
                    )
                else:
                    failure = await self.relay_json(
                        send, call, adapter, target, endpoint, response, sent_at
                    )
            finally:
                response.release()
            if failure is None:
                self.cooldowns.record(target.key, ok=True)
                return
            last_error = self.upstreams.failed(target, failure)
            if not failure.retryable:
                break
        raise self.final_error(last_error)

    async def count_tokens(
        self,
        scope: dict[str, Any],
        send: Any,
        call: Call,
        body: dict[str, Any],
        ask: Ask,
        ordered: list[Target],
    ) -> None:
        """``/v1/messages/count_tokens``: the first target whose provider counts tokens
        natively answers; when none does (or none answers), Baton's own estimate does,
        marked ``x-baton-estimated: true``. Counting is never billed as a completion."""
        assert self.upstreams.started
        forward = forwarded_headers(scope, call.dialect)
        adapter = routing.NATIVE["messages"](ask.model)
        for target in ordered:
            if not routing.counts_tokens(target):
                continue
            call.attempts += 1
            call.target, call.egress = target, "messages"
            request = adapter.build_request(
                "count_tokens", body, target.upstream, stream=False, forward=forward
            )
            sent_at = time.perf_counter()
            try:
                async with asyncio.timeout(settings.BATON_FIRST_BYTE_TIMEOUT):
                    response = await self.upstreams.send(target, request.method, request.url,
                                                        request.headers, request.body)  # fmt: skip
                    raw = await response.read()
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                self.upstreams.connection_error(target, exc)
                call.upstream_seconds += time.perf_counter() - sent_at
                continue
            call.upstream_seconds += time.perf_counter() - sent_at
            response.release()
            if response.status == 404:
                continue  # this endpoint does not count after all: Baton does
            if response.status >= 400:
                error = self.upstreams.failed(
                    target, adapter.parse_error(response.status, raw, response.headers)
                )
                if error.retryable:
                    continue
                raise self.final_error(error)
            call.status = 200
            headers = self.response_headers(call, target, JSON)
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": raw})
            return
        call.target, call.egress, call.status = None, "", 200
        payload = orjson.dumps({"input_tokens": call.dialect.estimate_prompt_tokens(body)})
        headers = [
            JSON,
            *id_headers(call),
            (b"x-baton-estimated", b"true"),
            *(call.hold.headers if call.hold is not None else ()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    @staticmethod
    def final_error(error: UpstreamError | None) -> RelayError:
        if error is None:
            return RelayError(
                503,
                "No upstream could serve this request.",
                type="server_error",
                code="no_upstream",
            )
        headers = {}
        if error.retry_after:
            headers["retry-after"] = str(max(1, round(error.retry_after)))
        return RelayError(
            error.status,
            error.message,
            type=error.type,
            code=error.code,
            param=error.param,
            headers=headers,
        )

    async def relay_json(
        self,
        send: Any,
        call: Call,
        adapter: Any,
        target: Target,
        endpoint: Endpoint,
        response: aiohttp.ClientResponse,
        sent_at: float,
    ) -> UpstreamError | None:
        raw = await response.read()
        call.upstream_seconds += time.perf_counter() - sent_at
        try:
            out, usage = adapter.parse_response(endpoint, raw, target.upstream)
        except UpstreamError as exc:
            return exc
        call.usage = usage
        call.status = 200
        tool_ids, reasoning = turns.turn_of_body(call.dialect.name, out)
        call.stored_response = turns.stored_response(call.egress, target, out)
        if call.notes is not None:
            await call.notes.write_turn(
                tool_ids, [reasoning] if reasoning else None, call.stored_response
            )
        headers = self.response_headers(call, target, JSON)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": out})
        return None

    async def relay_stream(
        self,
        receive: Any,
        send: Any,
        call: Call,
        adapter: Adapter,
        target: Target,
        response: aiohttp.ClientResponse,
        endpoint: Endpoint,
        body: dict[str, Any],
        ask: Ask,
        sent_at: float,
    ) -> UpstreamError | None:
        call.streamed = True
        translator = adapter.stream_translator(
            endpoint, target.upstream, client_wants_usage=ask.wants_usage
        )
        if call.hold is not None:
            call.hold.stream = translator  # and what it has streamed so far
        chunks = response.content.iter_any()
        # Before the first byte reaches the client a failure may still fall over.
        first = b""
        try:
            async for data in chunks:
                first += translator.feed(data)
                if translator.error is not None and not first:
                    return translator.error
                if first:
                    break
        except (TimeoutError, aiohttp.ClientError) as exc:
            return self.upstreams.connection_error(target, exc)
        if not first:
            first = translator.finish()
            if translator.error is not None or not first:
                return translator.error or UpstreamError(
                    502, "Upstream closed the stream early.", kind="server"
                )
        # Waiting for the first chunk is upstream time, so the overhead header
        # reports only what Baton itself added before the first byte.
        first_chunk_at = time.perf_counter()
        call.upstream_seconds += first_chunk_at - sent_at
        call.ttfb = first_chunk_at - call.started
        call.status = 200
        headers = self.response_headers(call, target, *SSE_HEADERS)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        notes = call.notes
        if notes is not None and notes.pending(translator):
            await notes.write(translator)
        # The first event goes out now, not a loop turn later from the pump task (TTFB).
        await send({"type": "http.response.body", "body": first, "more_body": True})
        self.open_streams += 1
        pump = asyncio.ensure_future(self.pump(send, translator, chunks, call.dialect, notes))
        watcher = asyncio.ensure_future(wait_for_disconnect(receive))
        self.lifecycle.track(watcher)
        try:
            await asyncio.wait({pump, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.open_streams -= 1
            watcher.cancel()
            if not pump.done():
                # The client went away: stop generating upstream at once.
                pump.cancel()
                response.close()
                call.status = 499
                call.error_class = "client_disconnected"
                tail = stream_tail(
                    translator, call.dialect, observability.SHUTDOWN_REFUSAL, shutdown=True
                )
                if await self.lifecycle.end_stream(send, pump, tail):  # shutdown grace is over
                    call.status, call.error_class = 200, "server_shutdown"
            call.upstream_seconds += time.perf_counter() - first_chunk_at
        if pump.done() and not pump.cancelled() and pump.exception() is not None:
            call.error_class = "stream_error"
        # Reported usage, completed by Baton's own estimate (and flagged) when
        # the stream ended before the provider reported all of it.
        usage = translator.settle_usage(call.dialect.estimate_prompt_tokens(body))
        if translator.error is not None:
            call.error_class = translator.error.code or translator.error.kind
        call.usage = usage
        if call.status == 200 and translator.error is None:
            call.stored_response = translator.stored_response
        return None

    @staticmethod
    async def pump(
        send: Any,
        translator: Any,
        chunks: Any,
        dialect: Dialect,
        notes: TurnNotes | None = None,
    ) -> None:
        try:
            async for data in chunks:
                out = translator.feed(data)
                if notes is not None and notes.pending(translator):
                    # Before the client sees the ids: its follow-up may name them at once.
                    await notes.write(translator)
                if out:
                    await send({"type": "http.response.body", "body": out, "more_body": True})
                if translator.error is not None:
                    break
            else:
                tail = translator.finish()
                if tail:
                    await send({"type": "http.response.body", "body": tail, "more_body": True})
        except (TimeoutError, aiohttp.ClientError) as exc:
            broken = UpstreamError(
                502,
                f"The upstream stream broke off: {type(exc).__name__}.",
                kind="server",
                code="upstream_stream_broken",
            )
            translator.error = broken
            event = stream_tail(translator, dialect, refusal_of(broken), shutdown=False)
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def response_headers(
        self, call: Call, target: Target, *extra: tuple[bytes, bytes]
    ) -> list[tuple[bytes, bytes]]:
        overhead = (time.perf_counter() - call.started - call.upstream_seconds) * 1000
        return [
            *extra,
            *id_headers(call),
            (b"x-baton-provider", header_value(target.upstream.provider)),
            (b"x-baton-model", header_value(target.upstream.model)),
            (b"x-baton-overhead-ms", f"{overhead:.3f}".encode()),
            *(call.hold.headers if call.hold is not None else ()),  # x-ratelimit-*
        ]

    def settle(self, call: Call, body: dict[str, Any] | None) -> None:
        if call.key is None or self.sink is None:
            return
        usage = call.usage
        if (
            call.status == 200
            and usage.prompt_tokens == 0
            and body is not None
            and call.endpoint != "count_tokens"  # counting is never billed as a completion
        ):
            usage.prompt_tokens = call.dialect.estimate_prompt_tokens(body)
            usage.estimated = True
        # The limits are settled once the usage event is written (Sink.emit's ``then``);
        # the event's time tells a settle from a reconciliation that already counted it.
        written = time.time()
        then = self.admission.settle(call.hold, call.target, usage, written) if call.hold else None
        total = time.perf_counter() - call.started
        target = call.target
        self.sink.emit(
            UsageEvent(
                request_id=call.request_id,
                client_request_id=call.client_request_id,
                team_id=call.key.team_id,
                api_key_id=call.key.key_id,
                endpoint=call.endpoint,
                alias=call.alias,
                credential_id=target.credential_id if target else None,
                provider=target.upstream.provider if target else "",
                upstream_model=target.upstream.model if target else "",
                dialect=call.dialect.name,
                egress=call.egress,
                reasoning=call.reasoning,
                prompt_tokens=usage.prompt_tokens,
                cached_tokens=usage.cached_tokens,
                cache_write_tokens=usage.cache_write_tokens,
                cache_write_1h_tokens=usage.cache_write_1h_tokens,
                completion_tokens=usage.completion_tokens,
                reasoning_tokens=usage.reasoning_tokens,
                estimated=usage.estimated,
                status=call.status or 500,
                error_class=call.error_class,
                streamed=call.streamed,
                attempts=call.attempts,
                latency_ms=total * 1000,
                ttfb_ms=call.ttfb * 1000 if call.ttfb is not None else None,
                overhead_ms=max(0.0, (total - call.upstream_seconds) * 1000),
                created_at=written,
            ),
            then,
        )

    # --- stored responses -------------------------------------------------------------
    async def stored_response(
        self, scope: dict[str, Any], send: Any, call: Call, rest: str
    ) -> None:
        """``GET``/``DELETE /v1/responses/{id}`` and ``GET .../input_items``: asked of the
        native stateful target that stored the response (the one Baton recorded issuing the
        id, gateway/turns.py), as the key's team; else OpenAI's 404. Not billed."""
        assert self.upstreams.started
        call.endpoint = "responses"
        method = scope["method"]
        response_id, _, suffix = rest.partition("/")
        if suffix not in ("", "input_items"):
            raise RelayError(404, f"Unknown endpoint {method} {scope['path']}.", code="unknown_url")
        allowed = ("GET",) if suffix else ("GET", "DELETE")
        if method not in allowed:
            raise RelayError(
                405, f"Use {' or '.join(allowed)} for {scope['path']}.", code="method_not_allowed"
            )
        key = await self.authenticate(scope)
        call.key = key
        missing = RelayError(
            404, f"Response with id {response_id!r} not found.", param="response_id", code=None
        )
        if not response_id or len(response_id) > MAX_MODEL_CHARS or not response_id.isprintable():
            raise missing
        team = await self.cache.team(key.team_id)
        try:
            record = await self.turns.issuer(team, response_id)
        except Exception:
            log.warning("turn memory unreachable; stored response %s not placed", call.request_id)
            record = None
        target = turns.issuing_target(team, str(record["t"])) if record else None
        if (
            record is None
            or target is None
            or "responses" not in target.upstream.natives
            or not key.allows_model(str(record.get("a") or ""))
        ):
            raise missing
        call.alias, call.target, call.egress = str(record.get("a") or ""), target, "responses"
        request = routing.RESPONSES_NATIVE.stored_request(
            method, target.upstream, response_id, "/input_items" if suffix else ""
        )
        # Only the listing and inclusion parameters OpenAI documents pass on, re-encoded.
        query = urlencode(
            [
                (name, value)
                for name, value in parse_qsl((scope.get("query_string") or b"").decode("latin-1"))
                if name in STORED_QUERY and method == "GET"
            ]
        )
        url = request.url + ("?" + query if query else "")
        sent_at = time.perf_counter()
        try:
            async with asyncio.timeout(settings.BATON_FIRST_BYTE_TIMEOUT):
                response = await self.upstreams.send(target, method, url, request.headers)
                raw = await response.read()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise self.final_error(self.upstreams.connection_error(target, exc)) from None
        finally:
            call.upstream_seconds += time.perf_counter() - sent_at
        response.release()
        if response.status >= 400:
            error = routing.RESPONSES_NATIVE.parse_error(response.status, raw, response.headers)
            raise self.final_error(self.upstreams.failed(target, error))
        if method == "DELETE":
            await self.turns.forget_response(team, response_id)
        call.status = response.status
        headers = self.response_headers(call, target, JSON)
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": raw})

    # --- models ---------------------------------------------------------------------
    async def models(
        self, scope: dict[str, Any], send: Any, call: Call, model_id: str | None
    ) -> None:
        call.endpoint = "models"
        key = await self.authenticate(scope)
        call.key = key
        if model_id is not None:
            if len(model_id) > MAX_MODEL_CHARS or not model_id.isprintable():
                raise model_not_found(model_id)  # and kept out of the log line it could forge
            call.alias = model_id
        team = await self.cache.team(key.team_id)
        names = [name for name in team.model_names() if key.allows_model(name)]
        owners = {
            name: ("baton" if name in team.routes else team.offered[name][0].upstream.provider)
            for name in names
        }
        if model_id is None:
            payload = call.dialect.models_body([(n, owners[n]) for n in names])
        elif model_id in owners and call.dialect is MESSAGES:
            payload = orjson.dumps(
                {
                    "type": "model",
                    "id": model_id,
                    "display_name": model_id,
                    "created_at": "1970-01-01T00:00:00Z",
                }
            )
        elif model_id in owners:
            payload = orjson.dumps(
                {"id": model_id, "object": "model", "created": 0, "owned_by": owners[model_id]}
            )
        else:
            raise model_not_found(model_id)
        call.status = 200
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [JSON, *id_headers(call)],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def send_error(self, send: Any, call: Call, error: RelayError) -> None:
        """The error in the client's dialect: its shape and the status its clients expect."""
        headers = [JSON, *id_headers(call)]
        headers += [(k.encode(), v.encode()) for k, v in error.headers.items()]
        refusal = refusal_of(error)
        status = call.dialect.error_status(refusal)
        try:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": call.dialect.error_body(refusal)})
        except Exception:
            log.debug("could not send error for %s: response already started", call.request_id)


def stream_tail(translator: Any, dialect: Dialect, refusal: Refusal, *, shutdown: bool) -> bytes:
    """What ends a stream Baton cuts: the translator's own ending where the dialect numbers
    its events and names its response in them (Responses, ``NumberedStream``), else the
    dialect's error event (and, at shutdown, its end of stream)."""
    own = getattr(translator, "failure_tail", None)
    tail = own(refusal) if own is not None else None
    if tail is not None:
        return bytes(tail)
    return dialect.shutdown_tail(refusal) if shutdown else dialect.error_event(refusal)


def refusal_of(error: RelayError | UpstreamError) -> Refusal:
    return Refusal(
        status=error.status,
        message=error.message,
        type=error.type,
        code=error.code,
        param=error.param,
        retryable=not (
            isinstance(error, RelayError) and error.headers.get("x-should-retry") == "false"
        ),
    )


def client_request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's own id for its request: ``x-client-request-id`` (OpenAI's name for it),
    else ``x-request-id``; kept only if it is 1 to ``MAX_CLIENT_REQUEST_ID`` printable ASCII
    characters, so it is safe to echo in a header and to store. Anything else is ignored."""
    found = b""
    for name, value in headers:
        if name == b"x-client-request-id" or (name == b"x-request-id" and not found):
            found = value
    if 0 < len(found) <= MAX_CLIENT_REQUEST_ID and found.isascii():
        text = found.decode("ascii")
        if text.isprintable():
            return text
    return ""


def id_headers(call: Call) -> list[tuple[bytes, bytes]]:
    """Baton's id for the request under the names the OpenAI SDKs (``x-request-id``) and the
    Anthropic SDKs (``request-id``) read, and the client's own id when it sent a valid one."""
    own = call.request_id.encode()
    headers = [(b"x-request-id", own), (b"request-id", own)]
    if call.client_request_id:
        headers.append((b"x-client-request-id", call.client_request_id.encode()))
    return headers


def forwarded_headers(scope: dict[str, Any], dialect: Dialect) -> dict[str, str]:
    """The client's headers a native target of its dialect gets unchanged: visible ASCII
    only (their values are version dates and beta names), or a 400 rather than a header
    the upstream request could not carry."""
    names = FORWARDED.get(dialect.name)
    if not names:
        return {}
    forward = {}
    for name, value in scope["headers"]:
        if name in names:
            text = value.decode("latin-1")
            if not (text.isascii() and text.isprintable()):
                raise RelayError(
                    400,
                    f"The {name.decode()} header must be printable ASCII.",
                    param=name.decode(),
                    code="invalid_header",
                )
            forward[name.decode()] = text
    return forward


def header_value(text: str) -> bytes:
    """Text for a response header: visible ASCII as it is, anything else (control
    characters, non-ASCII) percent-encoded as UTF-8, so that no value can break or
    inject a header line."""
    if text.isascii() and text.isprintable():
        return text.encode()
    return quote(text, safe=_HEADER_SAFE).encode()


async def read_body(receive: Any, scope: dict[str, Any]) -> bytes:
    limit = settings.BATON_MAX_BODY_BYTES
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise RelayError(
                413, f"The request body is larger than {limit} bytes.", code="request_too_large"
            )
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RelayError(
                413, f"The request body is larger than {limit} bytes.", code="request_too_large"
            )
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


async def wait_for_disconnect(receive: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
