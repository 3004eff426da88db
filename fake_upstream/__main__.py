"""Command line entry point: serve the fake upstream with uvicorn.

    python -m fake_upstream --host 127.0.0.1 --port 8001 [--latency-ms N --tps N
        --jitter-ms N]

The timing flags become the defaults for every request that has no fault directive overriding
them, which is how the benchmark simulates a provider with realistic latency.
"""

from __future__ import annotations

import argparse

import uvicorn

from fake_upstream.app import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m fake_upstream", description="Fake OpenAI-compatible LLM providers."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="delay before response headers"
    )
    parser.add_argument(
        "--tps",
        type=float,
        default=0.0,
        help="generated tokens per second (0 = as fast as possible)",
    )
    parser.add_argument(
        "--jitter-ms", type=float, default=0.0, help="random extra latency, uniform in [0, N]"
    )
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    app = create_app(
        default_latency_ms=args.latency_ms, default_tps=args.tps, jitter_ms=args.jitter_ms
    )
    # No access log: at benchmark rates it would cost more than serving the requests.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        timeout_graceful_shutdown=1,
    )


if __name__ == "__main__":
    main()
