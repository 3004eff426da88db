"""The floor under Baton's overhead: a bare ASGI pass-through proxy, for bench/run.py.

Same server, flags and workers as Baton, same upstream HTTP client (one pooled aiohttp
session), but no authentication, admission, routing, translation, metering or metrics: it
forwards the body to an upstream and relays whatever comes back, as it comes. The first path
segment picks the upstream from ``BENCH_FLOOR_UPSTREAMS`` (JSON, name -> URL): ``/real/...``
the ~100 ms fake, ``/fast/...`` the instant one. Measured under the same load as Baton, it
shows what any extra Python hop costs on this machine, which Baton's own overhead cannot go
below.
"""

from __future__ import annotations

import os
from typing import Any

import aiohttp
import orjson

UPSTREAMS: dict[str, str] = orjson.loads(os.environ["BENCH_FLOOR_UPSTREAMS"])
session: aiohttp.ClientSession | None = None


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global session
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                session = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if session is not None:
                    await session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/healthz":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = {
        k.decode(): v.decode()
        for k, v in scope["headers"]
        if k in (b"authorization", b"content-type")
    }
    assert session is not None
    upstream = UPSTREAMS[scope["path"].split("/")[1]]
    async with session.post(upstream, data=body, headers=headers) as response:
        kind = response.headers.get("content-type", "application/json").encode()
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [(b"content-type", kind)],
            }
        )
        async for data in response.content.iter_any():
            await send({"type": "http.response.body", "body": data, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
