"""Keeping a provider secret out of text that came from the provider.

Some providers echo the key they were sent in their errors: whole, as its first
characters followed by ``...``, or URL-encoded. Everything Baton passes on from
an upstream's error (the error JSON a client gets, in-stream error events,
messages built from provider errors, and from there the usage ledger, metrics
and logs) and the credential test's message go through :func:`scrub` with the
secret of the credential that was used. ``UpstreamError.scrubbed`` applies it
to an error's message, code and param.

What counts as a leak: any run of at least ``MIN_RUN`` consecutive characters of
the secret, or of its URL-encoded forms (upper- or lower-case escapes, ``/``
escaped or not). Each run is replaced by ``…`` and the secret's last four
characters, the hint Baton shows for a credential anyway. Eight characters
leave alone the masks providers design to be safe to show (OpenAI's
``sk-ab***...wxyz``: three to four characters of the key at each end) and catch
every longer echo; a random key shares eight characters with an unrelated
message by chance essentially never. Secrets shorter than eight characters are
matched whole, and secrets shorter than four are not secrets worth the name.
A human-chosen key that shares eight characters with Baton's own words (say
``my-upstream-key``) has those words masked in upstream errors too: harmless,
and the price of never passing on part of a key.

Cost: nothing is done on the success path. On an error, each form of the secret
is searched for at a few fixed anchors (a run of eight contains one of every
fifth 4-character slice of the secret) with ``str.find``, so a message costs a
handful of C-level scans, not a Python loop over its characters.
"""

from __future__ import annotations

import re
from urllib.parse import quote

MIN_RUN = 8
_ANCHOR = 4
_STRIDE = MIN_RUN - _ANCHOR + 1  # every run of MIN_RUN holds an anchor at a multiple of this
_ESCAPE = re.compile(r"%[0-9A-F]{2}")


def scrub(text: str, secret: str) -> str:
    """``text`` with every echo of ``secret`` (see the module docstring) replaced."""
    if not text or len(secret) < 4:
        return text
    spans: list[tuple[int, int]] = []
    for form in _forms(secret):
        spans += _runs(text, form)
    if not spans:
        return text
    merged: list[list[int]] = []
    for start, stop in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    marker = "…" + secret[-4:]
    out: list[str] = []
    end = 0
    for start, stop in merged:
        out += (text[end:start], marker)
        end = stop
    out.append(text[end:])
    return "".join(out)


def _forms(secret: str) -> set[str]:
    encoded = quote(secret, safe="")
    forms = {secret, encoded, quote(secret, safe="/")}
    forms.update({_ESCAPE.sub(lambda m: m.group(0).lower(), f) for f in forms if "%" in f})
    return forms


def _runs(text: str, form: str) -> list[tuple[int, int]]:
    """Spans of ``text`` that are runs of at least MIN_RUN characters of ``form``
    (all of ``form`` when it is shorter)."""
    spans: list[tuple[int, int]] = []
    if len(form) <= MIN_RUN:
        start = text.find(form)
        while start >= 0:
            spans.append((start, start + len(form)))
            start = text.find(form, start + 1)
        return spans
    # Anchors come in order, so a run already followed from an earlier anchor with the
    # same alignment (where form would start in text) ends at reached[alignment].
    reached: dict[int, int] = {}
    for i in range(0, len(form) - _ANCHOR + 1, _STRIDE):
        anchor = form[i : i + _ANCHOR]
        at = text.find(anchor)
        while at >= 0:
            if at < reached.get(at - i, -1):
                at = text.find(anchor, at + 1)
                continue
            left = 0
            while at - left > 0 and i - left > 0 and text[at - left - 1] == form[i - left - 1]:
                left += 1
            right = _ANCHOR
            while (
                at + right < len(text)
                and i + right < len(form)
                and text[at + right] == form[i + right]
            ):
                right += 1
            reached[at - i] = at + right
            if left + right >= MIN_RUN:
                spans.append((at - left, at + right))
            at = text.find(anchor, at + 1)
    return spans
