"""Prompt tokens: Baton's bound and estimate (wire/tokens.py) against real tokenizers, and
what computing them costs on the hot path.

    python bench/tokens.py   # -> bench/results/tokens-latest.{json,md}

``make bench`` runs it, ``make bench-tokens`` runs it alone; bench/update_docs.py copies the
Markdown into BENCHMARKS.md between the ``bench:tokens`` markers. The corpus is
tests/wire/tokens/corpus.json and the tokenizers are tests/wire/tokens/real.py (offline,
vendored files); the same comparison is a test (tests/wire/tokens/test_bound.py), which fails
if any tokenizer counts more than the bound.
"""

from __future__ import annotations

import functools
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
sys.path.insert(0, str(ROOT))

from tests.wire.tokens.corpus import PROSE, load  # noqa: E402
from tests.wire.tokens.real import tokenizers  # noqa: E402
from wire.dialects import CHAT  # noqa: E402
from wire.tokens import estimate_text_tokens, prompt_token_bound, text_token_bound  # noqa: E402


def chat_body(text: str) -> dict[str, Any]:
    return {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": text},
        ],
        "max_tokens": 256,
    }


def openai_chat_count(count: Callable[[str], int], body: dict[str, Any]) -> int:
    """OpenAI's documented chat rule: 3 per message plus its role and content, 3 to reply."""
    return 3 + sum(3 + count(m["role"]) + count(m["content"]) for m in body["messages"])


def compare() -> dict[str, Any]:
    corpus = load()
    tokenizer_list = tokenizers()
    rows = []
    requests = []
    o200k = next(t for t in tokenizer_list if t.name == "o200k").count
    fake = next(t for t in tokenizer_list if t.name == "fake").count
    from fake_upstream.tokens import prompt_tokens

    for name, text in corpus.items():
        counts = {t.name: t.count(text) for t in tokenizer_list}
        rows.append(
            {
                "text": name,
                "chars": len(text),
                "bytes": len(text.encode("utf-8", "surrogatepass")),
                "bound": text_token_bound(text) + 1,
                "estimate": estimate_text_tokens(text),
                "counts": counts,
            }
        )
        body = chat_body(text)
        requests.append(
            {
                "text": name,
                "bound": prompt_token_bound(body),
                "estimate": CHAT.estimate_prompt_tokens(body),
                "openai_o200k": openai_chat_count(o200k, body),
                "fake": prompt_tokens(body["messages"]),
            }
        )
    del fake
    return {
        "tokenizers": [{"name": t.name, "serves": t.serves} for t in tokenizer_list],
        "texts": rows,
        "requests": requests,
    }


def cpu_per_call(function: Callable[[], Any], budget_s: float = 0.5) -> float:
    """CPU seconds per call: the median of five rounds, each at least ``budget_s / 5``."""
    function()
    rounds = []
    for _ in range(5):
        calls = 0
        started = time.process_time()
        while True:
            function()
            calls += 1
            elapsed = time.process_time() - started
            if elapsed >= budget_s / 5:
                break
        rounds.append(elapsed / calls)
    return statistics.median(rounds)


def costs() -> list[dict[str, Any]]:
    """CPU of the estimate (what admission computed before) and of the bound it now also
    computes, per body; exact o200k counting for scale (the alternative not taken)."""
    corpus = load()

    def megabyte(text: str) -> str:
        """``text`` repeated to 1 MB of UTF-8."""
        size = len(text.encode("utf-8"))
        return (text * (1_000_000 // size + 1))[: len(text) * 1_000_000 // size]

    bodies = {
        "2 KB chat body (English)": chat_body((PROSE * 6)[:2000]),
        "1 MB chat body (English)": chat_body(megabyte(PROSE)),
        "1 MB chat body (Chinese)": chat_body(megabyte(corpus["Chinese prose"])),
        "1 MB chat body (emoji)": chat_body(megabyte(corpus["emoji, spaced"])),
        "1 MB chat body (U+FDFA, the worst case)": chat_body(megabyte(corpus["U+FDFA, repeated"])),
    }
    o200k = next(t for t in tokenizers() if t.name == "o200k").count
    out = []
    for name, body in bodies.items():
        estimate = cpu_per_call(functools.partial(CHAT.estimate_prompt_tokens, body))
        bound = cpu_per_call(functools.partial(prompt_token_bound, body))
        exact = cpu_per_call(
            functools.partial(openai_chat_count, o200k, body),
            budget_s=2.0 if "1 MB" in name else 0.5,
        )
        out.append(
            {
                "body": name,
                "json_bytes": len(json.dumps(body, ensure_ascii=False).encode()),
                "estimate_us": estimate * 1e6,
                "bound_us": bound * 1e6,
                "both_us": (estimate + bound) * 1e6,
                "o200k_us": exact * 1e6,
            }
        )
    return out


def ratio(a: int, b: int) -> str:
    return "n/a" if b == 0 else f"{a / b:.2f}"


def us(value: float) -> str:
    return f"{value:,.1f} us" if value < 1000 else f"{value / 1000:,.2f} ms"


def render(report: dict[str, Any]) -> str:
    names = [t["name"] for t in report["tokenizers"]]
    rows = report["texts"]
    held = sum(all(c <= r["bound"] for c in r["counts"].values()) for r in rows)
    ratios = [r["bound"] / max(max(r["counts"].values()), 1) for r in rows]
    under = [r for r in rows if r["estimate"] < max(r["counts"].values())]
    lines = [
        f"Corpus: {len(rows)} adversarial texts (tests/wire/tokens/corpus.json), "
        f"{len(names)} tokenizers (tests/wire/tokens/real.py, offline):",
        "",
    ]
    lines += [f"- **{t['name']}**: {t['serves']}" for t in report["tokenizers"]]
    lines += [
        "",
        f"**The bound held on {held} of {len(rows)} texts for every tokenizer** (a test fails "
        f"otherwise). Bound over the highest count: lowest {min(ratios):.2f}, median "
        f"{statistics.median(ratios):.2f}, highest {max(ratios):.2f}. The realistic estimate "
        f"is below the highest count on {len(under)} of {len(rows)} texts, down to "
        f"{min(r['estimate'] / max(r['counts'].values()) for r in rows):.2f} of it: that is why "
        "it prices no money hold.",
        "",
        "Per text: the bound is `text_token_bound(text) + 1` (UTF-8 bytes after the most "
        "lengthening normalisation, plus SentencePiece's dummy prefix); the estimate is "
        "`estimate_text_tokens(text)`; then each tokenizer's count.",
        "",
        "| text | bytes | bound | estimate | "
        + " | ".join(names)
        + " | bound ÷ highest | estimate ÷ highest | held |",
        "|---|" + "---:|" * (3 + len(names) + 2) + "---|",
    ]
    for r in rows:
        top = max(r["counts"].values())
        ok = all(c <= r["bound"] for c in r["counts"].values())
        lines.append(
            f"| {r['text']} | {r['bytes']:,} | {r['bound']:,} | {r['estimate']:,} | "
            + " | ".join(f"{r['counts'][n]:,}" for n in names)
            + f" | {ratio(r['bound'], top)} | {ratio(r['estimate'], top)} | "
            + ("yes" if ok else "**NO**")
            + " |"
        )
    requests = report["requests"]
    lines += [
        "",
        "Whole chat requests (a system message and the text as the user message): "
        "`prompt_token_bound(body)` against OpenAI's documented chat rule on o200k (3 tokens "
        "per message plus its role and content, 3 to open the reply) and the fake upstream's "
        "count (3 per message): bound over OpenAI's count lowest "
        f"{min(r['bound'] / r['openai_o200k'] for r in requests):.2f}, median "
        f"{statistics.median(r['bound'] / r['openai_o200k'] for r in requests):.2f}; over the "
        f"fake's lowest {min(r['bound'] / max(r['fake'], 1) for r in requests):.2f}; held for "
        f"{sum(r['bound'] >= max(r['openai_o200k'], r['fake']) for r in requests)} of "
        f"{len(requests)}.",
        "",
        "### What the prompt counts cost",
        "",
        "CPU per call in one process (median of five rounds). *Before*: the estimate alone, "
        "which admission computed until now. *After*: the estimate (tokens per minute) plus "
        "the bound (money). Exact counting with o200k, the road not taken, for scale. ASCII "
        "strings cost the bound nothing per byte; other text costs a regex scan for the "
        "characters normalisation can lengthen, most when every character is one. A body over "
        "256 KiB is counted in a worker thread (`gateway/asgi.py`, `COUNT_IN_THREAD_BYTES`), "
        "so such a scan does not stall the event loop.",
        "",
        "| body | JSON size | estimate (before) | bound | estimate + bound (after) | exact o200k count |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for c in report["costs"]:
        lines.append(
            f"| {c['body']} | {c['json_bytes']:,} B | {us(c['estimate_us'])} | "
            f"{us(c['bound_us'])} | {us(c['both_us'])} | {us(c['o200k_us'])} |"
        )
    lines += ["", f"- Python {report['python']}; finished {report['finished_at']}"]
    return "\n".join(lines) + "\n"


def main() -> int:
    started = time.perf_counter()
    report = compare()
    report["costs"] = costs()
    report["python"] = platform.python_version()
    report["finished_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    report["elapsed_s"] = time.perf_counter() - started
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tokens-latest.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    markdown = render(report)
    (RESULTS / "tokens-latest.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
