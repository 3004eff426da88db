"""Render a benchmark JSON file (bench/run.py) as Markdown. Every number comes from the JSON.

python bench/report.py bench/results/bench-latest.json
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson

TARGETS = {
    "unloaded_p50": 1.0,
    "unloaded_p99": 3.0,
    "ttfb_p50": 1.5,
    "realistic_p99": 5.0,
    "json_ratio": 5.0,
    "stream_ratio": 8.0,
    "flat_growth": 0.02,  # RSS growth over the all-open window, as a share of RSS
    "native_cost": 1.10,  # a native dialect's CPU per request and stream, over chat's
}


def ok(condition: bool) -> str:
    return "met" if condition else "**missed**"


def f(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def machine(report: dict[str, Any]) -> list[str]:
    m = report["machine"]
    packages = ", ".join(f"{k} {v}" for k, v in sorted(m["packages"].items()))
    lines = [
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}",
        f"- Python {m['python']}; {packages}",
        f"- {m['redis_server'].split(' sha=')[0]}; {m['wrk']}",
        f"- Baton: uvicorn, {report['workers']} worker processes (uvloop, httptools, no access "
        "log), DEBUG off, PostgreSQL + Redis, usage events to the Redis stream, Prometheus "
        "multiprocess metrics on",
        f"- Quota limits: {report.get('limits', 'n/a')}",
        f"- Finished {report.get('finished_at', '?')}, run took {report['elapsed_s']:.0f} s",
    ]
    if "litellm" in m:
        lines.insert(2, f"- LiteLLM {m['litellm'].get('litellm', '?')} (its own venv)")
    return lines


def saturated_table(runs: dict[str, list[dict[str, Any]]], title: str) -> list[str]:
    lines = [
        f"| {title} | conc. | req/s | p50 ms | p99 ms | errors | server CPU ms/req | "
        "Redis CPU ms/req | server cores | fake cores | wrk cores | machine busy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, label in (("json", "non-streaming"), ("stream", "20-chunk streams")):
        for run in runs[kind]:
            lat = run["latency_ms"]
            lines.append(
                f"| {label} | {run['connections']} | {f(run['rps'], 0)} | {f(lat['p50'])} | "
                f"{f(lat['p99'])} | {run['errors']} | {f(run['server_cpu_ms_per_request'], 3)} | "
                f"{f(run.get('redis_cpu_ms_per_request'), 3)} | "
                f"{f(run['server_cpu_cores'])} | {f(run['fake_cpu_cores'])} | "
                f"{f(run['wrk_cpu_cores'])} | {f(run.get('machine_busy_cores'))} |"
            )
    return lines


def redis_breakdown(runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Redis's own time per relayed request, by command (INFO commandstats), at 64 connections."""
    out = []
    for kind, label in (("json", "non-streaming"), ("stream", "streams")):
        run = next((x for x in runs[kind] if x["connections"] == 64), None)
        commands = (run or {}).get("redis_commands_per_request")
        if not commands:
            continue
        script = commands.get("evalsha", {"calls": 0, "us": 0})
        sink = commands.get("xadd", {"calls": 0, "us": 0})
        out.append(
            f"Redis time per {label} request (64 connections, INFO commandstats): `evalsha` "
            f"{script['calls']:.2f} calls, {script['us']:.1f} us (including the commands the "
            f"script runs); `xadd` {sink['calls']:.2f} calls, {sink['us']:.1f} us."
        )
    if out:
        out.append(
            "`evalsha` is the quota script (the admit, which writes the request's in-flight "
            "record, and the settle; a team's admits and settles that meet in time share a "
            "call, and the lease renewals and the reaper's passes count too: "
            "`bench/quota_cost.py` measures each apart), `xadd` the metering sink (batched). "
            "Redis is one thread shared by every web process, so its time per request bounds "
            "the whole deployment's rate."
        )
    return out


def quarter_line(q: dict[str, Any] | None) -> list[str]:
    if not q:
        return []
    o = q["overhead_ms"]
    return [
        f"At a quarter of the saturated rate ({f(q['rate'], 0)} req/s through Baton, same "
        f"method): overhead p50 {f(o['total_ms']['p50'], 3)} ms, p99 {f(o['total_ms']['p99'], 3)} "
        f"ms; Baton used {f(q['server_cpu_cores'])} cores, the machine "
        f"{f(q.get('machine_busy_cores'))}; errors: "
        f"{sum(q['baton']['errors'].values()) + sum(q['direct']['errors'].values())}.",
        "",
    ]


def quota_split_lines(qs: dict[str, Any] | None) -> list[str]:
    """Same rate, every other request for a team without limits: the admission call's cost."""
    if not qs:
        return []
    with_limits, without = qs["overhead_ms"], qs["no_limits_overhead_ms"]
    errors = sum(
        sum(x["errors"].values()) for x in qs.values() if isinstance(x, dict) and "errors" in x
    )
    return [
        "What the admission call costs under this load: the same rate again, every other "
        "request for a second team with the same routes and no limits (no admission call; "
        "usage still metered), both halves interleaved with the direct requests in the same "
        f"moments. Overhead with limits p50 {f(with_limits['total_ms']['p50'], 3)} ms, p99 "
        f"{f(with_limits['total_ms']['p99'], 3)} ms; without limits p50 "
        f"{f(without['total_ms']['p50'], 3)} ms, p99 {f(without['total_ms']['p99'], 3)} ms. "
        f"Baton used {f(qs['server_cpu_cores'])} cores, the machine "
        f"{f(qs.get('machine_busy_cores'))}; errors: {errors}.",
        "",
    ]


def floor_lines(fl: dict[str, Any] | None) -> list[str]:
    """The same open loop through bench/floor_proxy.py: what any extra hop costs here."""
    if not fl:
        return []
    o = fl["overhead_ms"]
    return [
        "The floor: the same load, the same way, through a bare pass-through proxy "
        "(bench/floor_proxy.py: the same server, workers and upstream client, no Baton logic) "
        f"instead of Baton: overhead p50 {f(o['total_ms']['p50'], 3)} ms, p99 "
        f"{f(o['total_ms']['p99'], 3)} ms; the proxy used {f(fl['server_cpu_cores'])} cores, "
        f"the machine {f(fl.get('machine_busy_cores'))}; errors: "
        f"{sum(fl['baton']['errors'].values()) + sum(fl['direct']['errors'].values())}.",
        "",
    ]


def floor_own_half_lines(own: dict[str, Any] | None) -> list[str]:
    """The bare proxy measured the way Baton is: half of its own saturated rate."""
    if not own:
        return []
    sat, real = own["saturated"], own["realistic"]
    o = real["overhead_ms"]
    return [
        "The floor measured exactly as Baton is: saturated (wrk, 20-chunk streams, 64 "
        f"connections, instant upstream) it served {f(sat['rps'], 0)} req/s with "
        f"{f(sat['server_cpu_ms_per_request'], 3)} CPU ms/req; at half of that "
        f"({f(real['rate'], 0)} req/s, the same open loop) its overhead was p50 "
        f"{f(o['total_ms']['p50'], 3)} ms, p99 {f(o['total_ms']['p99'], 3)} ms, the machine "
        f"busy {f(real.get('machine_busy_cores'))} cores (the proxy "
        f"{f(real['server_cpu_cores'])}, the generator {f(real['generator']['cpu_share'])}); "
        f"errors: {sum(real['baton']['errors'].values()) + sum(real['direct']['errors'].values())}.",
        "",
    ]


def render_bench(r: dict[str, Any]) -> str:
    un = r["unloaded"]
    jo, so = un["json"]["overhead_ms"], un["stream"]["overhead_ms"]
    real = r["realistic"]
    ro = real["overhead_ms"]
    st = r["streams"]
    late = st.get("rss_late_window_s")
    growth = (
        st["rss_late_slope_bytes_per_s"] * (late[1] - late[0]) / (st["rss_end_mib"] * 2**20)
        if late and st.get("rss_end_mib")
        else 0.0
    )
    lines = ["### Machine", "", *machine(r), "", "### Against the targets", ""]
    lines += [
        "| target | measured | |",
        "|---|---:|---|",
        f"| unloaded overhead p50 <= 1 ms (non-streaming) | {f(jo['total']['p50'], 3)} ms | "
        f"{ok(jo['total']['p50'] <= TARGETS['unloaded_p50'])} |",
        f"| unloaded overhead p99 <= 3 ms (non-streaming) | {f(jo['total']['p99'], 3)} ms | "
        f"{ok(jo['total']['p99'] <= TARGETS['unloaded_p99'])} |",
        f"| streaming time-to-first-byte overhead p50 <= 1.5 ms | {f(so['ttfb']['p50'], 3)} ms | "
        f"{ok(so['ttfb']['p50'] <= TARGETS['ttfb_p50'])} |",
        f"| realistic load overhead p99 <= 5 ms (streams, total time) | "
        f"{f(ro['total_ms']['p99'], 3)} ms | {ok(ro['total_ms']['p99'] <= TARGETS['realistic_p99'])} |",
        f"| {st['streams']} concurrent streams without errors | {st['error_count']} errors | "
        f"{ok(st['error_count'] == 0 and st['completed'] == st['streams'])} |",
        f"| flat RSS as streams age (growth over the second half of their life < 2 %) | "
        f"{f(st.get('rss_late_slope_bytes_per_s'), 0)} B/s ({f(growth * 100, 2)} %) | "
        f"{ok(abs(growth) < TARGETS['flat_growth'])} |",
        f"| saturated errors (all runs) | "
        f"{sum(x['errors'] for k in ('json', 'stream') for x in r['saturated'][k])} | "
        f"{ok(all(x['errors'] == 0 for k in ('json', 'stream') for x in r['saturated'][k]))} |",
        "",
        "Throughput against LiteLLM is in the comparison run (`make bench-compare`) below.",
        "",
        "### Unloaded (one request at a time)",
        "",
        "| | direct p50 | Baton p50 | overhead p50 | direct p99 | Baton p99 | overhead p99 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, label in (("json", "non-streaming, total"), ("stream", "streaming, total")):
        d, b, o = (
            un[kind]["direct"]["total"],
            un[kind]["baton"]["total"],
            un[kind]["overhead_ms"]["total"],
        )
        lines.append(
            f"| {label} | {f(d['p50'], 3)} | {f(b['p50'], 3)} | {f(o['p50'], 3)} | "
            f"{f(d['p99'], 3)} | {f(b['p99'], 3)} | {f(o['p99'], 3)} |"
        )
    d, b, o = un["stream"]["direct"]["ttfb"], un["stream"]["baton"]["ttfb"], so["ttfb"]
    lines.append(
        f"| streaming, first byte | {f(d['p50'], 3)} | {f(b['p50'], 3)} | {f(o['p50'], 3)} | "
        f"{f(d['p99'], 3)} | {f(b['p99'], 3)} | {f(o['p99'], 3)} |"
    )
    header = un["json"]["baton"].get("header")
    if header:
        lines += [
            "",
            f"All in milliseconds, {un['json']['baton']['total']['n']} requests each way; the "
            f"machine was busy {f(un.get('machine_busy_cores'))} cores on average meanwhile. "
            f"Baton's own `x-baton-overhead-ms` header (time inside the app, non-streaming): "
            f"p50 {f(header['p50'], 3)}, p99 {f(header['p99'], 3)}.",
        ]
    hop, ping = un.get("healthz_ms"), un.get("redis_ping_ms")
    if hop and ping:
        lines += [
            "",
            f"What any extra hop costs here: Baton's `/healthz` (uvicorn + a bare ASGI answer, no "
            f"work) takes p50 {f(hop['p50'], 3)} / p99 {f(hop['p99'], 3)} one at a time, and one "
            f"Redis round trip from asyncio p50 {f(ping['p50'], 3)} / p99 {f(ping['p99'], 3)}. "
            f"The non-streaming overhead p50 of {f(jo['total']['p50'], 3)} therefore splits into "
            f"about {f(hop['p50'], 3)} for the client-to-Baton hop, and "
            f"{f(jo['total']['p50'] - hop['p50'], 3)} for Baton's work including the admission "
            "round trip to Redis.",
        ]
    fa = r["fake_alone"]
    lines += [
        "",
        "### Saturated (closed loop, instant upstream, wrk)",
        "",
        *saturated_table(r["saturated"], "Baton"),
        "",
        *redis_breakdown(r["saturated"]),
        "",
    ]
    lines += [
        f"The fake upstream alone (wrk straight at it, 64 connections): "
        f"{f(fa['json']['rps'], 0)} req/s non-streaming, {f(fa['stream']['rps'], 0)} req/s "
        f"streaming, using {f(fa['json']['server_cpu_cores'])} / "
        f"{f(fa['stream']['server_cpu_cores'])} cores. Every process shares the same "
        f"{r['machine']['cores']} cores, so the fake upstream and wrk take CPU that Baton "
        "would otherwise have; the CPU milliseconds per request are Baton's own (its worker "
        "processes, from /proc). *Machine busy* counts every process on the machine (cores): "
        "anything above server + fake + wrk + Redis/PostgreSQL is other load, which makes that "
        "run's req/s and latency pessimistic.",
        "",
        "### Realistic (open loop, upstream ~100 ms with jitter, 20-chunk streams)",
        "",
        f"Offered {f(real['rate'], 0)} req/s through Baton (half the best saturated streaming "
        f"rate) for {f(real['seconds'], 0)} s, Poisson arrivals, with one direct request "
        "interleaved for every three through Baton so that both see the same conditions; "
        "latency is measured from each request's scheduled start.",
        "",
        "| | sent | errors | achieved req/s | total p50 | total p99 | first byte p50 | "
        "first byte p99 | generator CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for where in ("direct", "baton"):
        x = real[where]
        lines.append(
            f"| {where} | {x['sent']} | {sum(x['errors'].values())} | {f(x['achieved_rate'], 0)} | "
            f"{f(x['total_ms']['p50'])} | {f(x['total_ms']['p99'])} | {f(x['ttfb_ms']['p50'])} | "
            f"{f(x['ttfb_ms']['p99'])} | {f(real['generator']['cpu_share'])} cores |"
        )
    lines += [
        f"| **overhead** | | | | {f(ro['total_ms']['p50'], 3)} | {f(ro['total_ms']['p99'], 3)} | "
        f"{f(ro['ttfb_ms']['p50'], 3)} | {f(ro['ttfb_ms']['p99'], 3)} | |",
        "",
        f"Baton's workers used {f(real['server_cpu_cores'])} cores; the machine was busy "
        f"{f(real.get('machine_busy_cores'))} cores (of which the hypervisor took "
        f"{f(real.get('steal_cores'), 3)} for other guests); the generator's schedule lateness "
        "p99 was "
        f"{f(real['schedule_lateness_ms']['p99'])} ms. Baton's own account of its time before "
        "the first byte (`x-baton-overhead-ms`: from the request reaching the app to the first "
        "byte going out, less the wait for the upstream) was p50 "
        f"{f(real['baton']['overhead_header_ms']['p50'], 3)} ms, p99 "
        f"{f(real['baton']['overhead_header_ms']['p99'], 3)} ms.",
        "",
        *quota_split_lines(r.get("realistic_quota_split")),
        *floor_lines(r.get("realistic_floor")),
        *floor_own_half_lines(r.get("floor_own_half")),
        *quarter_line(r.get("realistic_quarter")),
        "### Many concurrent streams",
        "",
        f"{st['streams']} streams opened over 5 s, one chunk every 100 ms, "
        f"{f(st['duration_s'], 1)} s each: {st['completed']} completed, {st['error_count']} "
        f"errors {st['errors'] or ''}. Baton RSS (all workers): {f(st['idle_rss_mib'], 1)} MiB "
        f"before, {f(st['rss_all_open_mib'], 1)} MiB with all streams open "
        f"({f(st['rss_per_open_stream_kib'], 1)} KiB per open stream), "
        f"{f(st.get('rss_end_mib'), 1)} MiB when the first streams ended. Slope while they "
        f"aged: {f(st['rss_slope_bytes_per_s'], 0)} bytes/s over the whole window "
        f"({f(st['rss_slope_bytes_per_s_per_stream'], 2)} per stream), "
        f"{f(st.get('rss_late_slope_bytes_per_s'), 0)} bytes/s over its second half (allocator "
        f"arenas fill early, then RSS levels off). CPU: Baton {f(st['server_cpu_cores'])} "
        f"cores, fake upstream {f(st['fake_cpu_cores'])}, generators "
        f"{f(st['generator_cpu_cores'])}, whole machine {f(st.get('machine_busy_cores'))}. "
        "Streams last longer than 25 s when the machine cannot keep up with 20,000 chunks a "
        "second across fake upstream, Baton and generators.",
    ]
    mc = r.get("metrics_cost", {})
    if "multiprocess_us" in mc:
        lines += [
            "",
            "### Cost of the per-request metrics",
            "",
            f"`gateway.observability.record` per request: {f(mc['multiprocess_us'], 2)} us in "
            f"multiprocess mode (production), {f(mc['single_process_us'], 2)} us single-process.",
        ]
    if "choices" in r:
        from choices import render_choices

        lines += ["", *render_choices(r["choices"])]
    if "profile" in r:
        lines += ["", "### Profile (saturated, non-streaming)", "", *r["profile"]]
    if "realistic_profile" in r:
        lines += [
            "",
            "### Profile (realistic load, streams)",
            "",
            "py-spy on one worker during a second realistic run at the same rate:",
            "",
            *r["realistic_profile"],
        ]
    return "\n".join(lines) + "\n"


def render_compare(r: dict[str, Any]) -> str:
    ratios = r["ratios"]
    lines = ["### Machine", "", *machine(r), ""]
    lines += [
        "LiteLLM runs as `litellm --config config.yaml --num_workers N` with "
        "`LITELLM_LOCAL_MODEL_COST_MAP=True`, its master key and no database: it does no key "
        "lookup and no spend tracking, which favours it. Baton runs as in `make bench` (keys "
        "from its cache, admission and metering to Redis on every request). Same fake upstream, "
        "same worker count, same wrk load, measured in the same run.",
        "",
        "| target | measured | |",
        "|---|---:|---|",
        f"| saturated throughput >= 5x LiteLLM, non-streaming (best vs best) | "
        f"{f(ratios['json_best'], 2)}x | {ok((ratios['json_best'] or 0) >= TARGETS['json_ratio'])} |",
        f"| saturated throughput >= 8x LiteLLM, 20-chunk streams (best vs best) | "
        f"{f(ratios['stream_best'], 2)}x | "
        f"{ok((ratios['stream_best'] or 0) >= TARGETS['stream_ratio'])} |",
        f"| zero errors (Baton) | "
        f"{sum(x['errors'] for k in ('json', 'stream') for x in r['baton'][k])} | "
        f"{ok(all(x['errors'] == 0 for k in ('json', 'stream') for x in r['baton'][k]))} |",
        "",
        "| kind | conc. | Baton req/s | LiteLLM req/s | ratio | CPU per request, LiteLLM / Baton |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind in ("json", "stream"):
        for b, lt, ratio in zip(r["baton"][kind], r["litellm"][kind], ratios[kind], strict=True):
            lines.append(
                f"| {kind} | {b['connections']} | {f(b['rps'], 0)} | {f(lt['rps'], 0)} | "
                f"{f(ratio['rps_ratio'], 2)}x | {f(ratio['cpu_per_request_ratio'], 2)}x |"
            )
    lines += [
        "",
        *saturated_table(r["litellm"], "LiteLLM"),
        "",
        *saturated_table(r["baton"], "Baton"),
    ]
    return "\n".join(lines) + "\n"


def render_dialects(r: dict[str, Any]) -> str:
    """The dialects phase: each line's figures, then each divided by the chat line's."""
    d = r["dialects"]
    lines = d["lines"]
    share = TARGETS["native_cost"] - 1
    out = ["### Machine", "", *machine(r), ""]
    out += [
        "Every line goes through Baton to the instant fake upstream. A native line's direct "
        "baseline is the same dialect at the fake (`/anthropic/v1/messages`, `/v1/responses`); "
        "a translated line's is the fake's chat endpoint, which is the upstream work it does. "
        f"Unloaded: {d['requests']} requests to each target, one at a time, all targets in turn "
        f"(the machine busy {f(d.get('unloaded_busy_cores'))} cores meanwhile); overhead = "
        "Baton minus direct, in milliseconds. Saturated: wrk, "
        f"{d['connections']} connections, {f(d['seconds'], 0)} s per run, the lines back to "
        "back for each kind. CPU: Baton's worker processes, from /proc; per chunk is the slope "
        f"between {d['chunks'][0]}-chunk and {d['chunks'][1]}-chunk streams; *fake* is the fake upstream's CPU per request, "
        "which also differs by dialect and shares the cores, so req/s compares less cleanly "
        "than Baton's CPU.",
        "",
        "| line | overhead p50 | overhead p99 | first byte overhead p50 | first byte overhead "
        "p99 | req/s | req/s, streams | CPU ms/req | CPU ms/stream | CPU us/chunk | fake CPU "
        "ms/req | fake CPU ms/stream | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, line in lines.items():
        x = line["figures"]
        out.append(
            f"| {name} | {f(x['overhead_p50'], 3)} | {f(x['overhead_p99'], 3)} | "
            f"{f(x['ttfb_overhead_p50'], 3)} | {f(x['ttfb_overhead_p99'], 3)} | "
            f"{f(x['rps'], 0)} | {f(x['stream_rps'], 0)} | {f(x['cpu_per_request'], 3)} | "
            f"{f(x['cpu_per_stream'], 3)} | {f(x['cpu_us_per_chunk'], 1)} | "
            f"{f(x['fake_cpu_per_request'], 3)} | {f(x['fake_cpu_per_stream'], 3)} | "
            f"{x['errors']} |"
        )
    out += [
        "",
        "Each figure divided by the chat line's (for overhead and CPU, below 1 is cheaper than "
        "chat; for req/s, above 1 is faster):",
        "",
        "| line | overhead p50 | overhead p99 | first byte p50 | first byte p99 | req/s | "
        "req/s, streams | CPU/req | CPU/stream | CPU/chunk |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    names = (
        "overhead_p50",
        "overhead_p99",
        "ttfb_overhead_p50",
        "ttfb_overhead_p99",
        "rps",
        "stream_rps",
        "cpu_per_request",
        "cpu_per_stream",
        "cpu_us_per_chunk",
    )
    for name, line in lines.items():
        if name != "chat":
            ratios = " | ".join(f"{f(line['vs_chat'][n], 2)}x" for n in names)
            out.append(f"| {name} | {ratios} |")
    out += [
        "",
        f"Native pass-through against its target (Baton's CPU within {share:.0%} of the chat "
        "path's):",
        "",
        "| target | measured | |",
        "|---|---:|---|",
    ]
    for name, line in lines.items():
        if name.endswith("native"):
            for figure, label in (("cpu_per_request", "request"), ("cpu_per_stream", "stream")):
                ratio = line["vs_chat"][figure]
                out.append(
                    f"| {name}: CPU per {label} <= {1 + share:.2f}x chat | {f(ratio, 2)}x | "
                    f"{ok(ratio is not None and ratio <= 1 + share)} |"
                )
    events = "; ".join(
        f"{name} {line['stream_events']['baton']} (direct {line['stream_events']['direct']})"
        for name, line in lines.items()
    )
    out += ["", f"Events in a 20-chunk stream, through Baton: {events}."]
    return "\n".join(out) + "\n"


def render(report: dict[str, Any]) -> str:
    if report["kind"] == "dialects":
        return render_dialects(report)
    return render_compare(report) if report["kind"] == "compare" else render_bench(report)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.stdout.write(render(orjson.loads(Path(sys.argv[1]).read_bytes())))
