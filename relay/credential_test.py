"""The "Test" button of a provider credential.

One minimal request with the credential: the provider's model list, or, for
providers without one (``has_models_endpoint=False``), a one-token chat
completion with the first model the catalog knows. It goes through the same
adapter and the same SSRF-guarded connector as relay traffic, with a 10 s
limit, and answers with a short message that is safe to store and show: the
latency on success, the provider's own error (normalised by the adapter) on
failure. The secret never appears in it, even if an upstream echoes it back.

``plan`` runs in the synchronous caller (it reads the catalog row);
``probe`` is the network part and touches no database.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from relay.models import ProviderCredential
from relay.netguard import (
    AddressPolicy,
    UnsafeUpstreamURL,
    check_url_host,
    guarded_connector,
    unsafe_address_cause,
)
from wire.providers import Endpoint, Upstream, UpstreamError, get_adapter
from wire.scrub import scrub

log = logging.getLogger("baton.credentials")

TIMEOUT_SECONDS = 10.0
MAX_BODY_BYTES = 1024 * 1024
MESSAGE_CHARS = 500  # what the credential row keeps (last_test_message)
PING_BODY: dict[str, Any] = {"messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    message: str
    latency_ms: int | None = None
    decrypted: bool = True


@dataclass(frozen=True)
class Plan:
    """What to send: everything ``probe`` needs, as plain values."""

    credential_id: str
    upstream: Upstream = field(repr=False)  # holds the secret
    endpoint: Endpoint
    body: dict[str, Any]
    problem: str = ""  # set when there is nothing sensible to send


@sensitive_variables("secret", "upstream")
def plan(credential: ProviderCredential, secret: str) -> Plan:
    provider = credential.provider
    known = [str(m) for m in provider.known_models or []]
    endpoint: Endpoint = "models" if provider.has_models_endpoint else "chat"
    model = known[0] if known else ""
    problem = ""
    if endpoint == "chat" and not model:
        problem = _("The catalog knows no model of this provider to test with.")
    base_url = credential.effective_base_url()
    if not base_url:
        problem = _("This credential has no base URL.")
    upstream = Upstream(
        provider=provider.slug,
        family=provider.family,
        base_url=base_url.rstrip("/"),
        api_key=secret,
        model=model,
        extras=dict(credential.extras or {}),
    )
    body = {} if endpoint == "models" else dict(PING_BODY)
    return Plan(str(credential.pk), upstream, endpoint, body, problem)


async def _read_bounded(response: aiohttp.ClientResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_BODY_BYTES:
            break
    return b"".join(chunks)[:MAX_BODY_BYTES]


def _models_count(body: bytes) -> int | None:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    data = payload.get("data") if isinstance(payload, dict) else None
    return len(data) if isinstance(data, list) else None


@sensitive_variables("secret", "job")
async def probe(
    job: Plan, *, policy: AddressPolicy, timeout: float = TIMEOUT_SECONDS
) -> ProbeResult:
    secret = job.upstream.api_key
    result = await _probe(job, policy, timeout)
    message = scrub(result.message[:MESSAGE_CHARS], secret)
    log.info("provider credential %s tested: ok=%s %s", job.credential_id, result.ok, message)
    return ProbeResult(ok=result.ok, message=message, latency_ms=result.latency_ms)


@sensitive_variables("job", "upstream", "request")
async def _probe(job: Plan, policy: AddressPolicy, timeout: float) -> ProbeResult:
    if job.problem:
        return ProbeResult(False, job.problem)
    upstream = job.upstream
    adapter = get_adapter(upstream.family)
    try:
        request = adapter.build_request(job.endpoint, job.body, upstream, stream=False)
        check_url_host(request.url, policy)
    except UpstreamError as exc:
        return ProbeResult(False, exc.message)
    except UnsafeUpstreamURL as exc:
        return ProbeResult(
            False, _("Refused by Baton's network guard: %(reason)s") % {"reason": exc}
        )

    started = time.perf_counter()
    try:
        async with (
            aiohttp.ClientSession(
                connector=guarded_connector(policy, force_close=True),
                timeout=aiohttp.ClientTimeout(total=timeout),
                trust_env=False,  # a proxy would resolve hosts behind the guard's back
            ) as session,
            session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body,
                allow_redirects=False,
            ) as response,
        ):
            body = await _read_bounded(response)
            status = response.status
            headers = response.headers
    except TimeoutError:
        return ProbeResult(False, _("No answer within %(seconds)d seconds.") % {"seconds": timeout})
    except aiohttp.ClientError as exc:
        unsafe = unsafe_address_cause(exc)
        if unsafe is not None:
            return ProbeResult(
                False, _("Refused by Baton's network guard: %(reason)s") % {"reason": unsafe}
            )
        if isinstance(exc, aiohttp.ClientConnectorError):
            reason = exc.os_error.strerror or str(exc.os_error)
            return ProbeResult(
                False,
                _("Could not connect to %(host)s: %(reason)s")
                % {"host": exc.host, "reason": reason},
            )
        return ProbeResult(
            False, _("The request failed: %(reason)s") % {"reason": str(exc) or type(exc).__name__}
        )
    latency_ms = round((time.perf_counter() - started) * 1000)

    if 300 <= status < 400:
        return ProbeResult(
            False,
            _("The upstream answered with a redirect (HTTP %(status)d): check the base URL.")
            % {"status": status},
            latency_ms,
        )
    if status >= 400:
        error = adapter.parse_error(status, body, headers)
        return ProbeResult(False, f"HTTP {error.status}: {error.message}", latency_ms)
    try:
        adapter.parse_response(job.endpoint, body, upstream)
    except UpstreamError as exc:
        return ProbeResult(False, f"HTTP {exc.status}: {exc.message}", latency_ms)
    count = _models_count(body) if job.endpoint == "models" else None
    if count is not None:
        message = _("Worked: answered in %(ms)d ms and lists %(count)d models.") % {
            "ms": latency_ms,
            "count": count,
        }
    else:
        message = _("Worked: answered in %(ms)d ms.") % {"ms": latency_ms}
    return ProbeResult(True, message, latency_ms)
