"""From the ``model`` a client sent to the ordered list of targets to try.

1. A team alias (``gpt-4o`` -> ``qwen-plus`` on DashScope, then ``glm-4.6``).
2. ``provider/model`` or ``credential-name/model``: that model on those credentials.
3. A model one of the team's credentials offers directly.

Within a priority, targets are shuffled by weight; lower priorities come
first. Targets in cooldown go to the back rather than away, so a team whose
every target is cooling still gets an answer if one has recovered.

Then, per target, how the request gets there (``adapter_for``): a client's dialect
goes to a target that speaks it natively as it is (only model and auth rewritten);
only a target that lacks it gets a translation, through the chat pivot.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

from gateway.contexts import Target, TeamContext
from gateway.cooldown import Cooldowns
from wire.base import Adapter
from wire.dialects import Ask, Dialect
from wire.dialects.translated import TranslatedAdapter
from wire.providers import get_adapter
from wire.providers.messages_native import MessagesNativeAdapter
from wire.providers.quirks import messages_quirks_for
from wire.providers.responses_native import ResponsesNativeAdapter

# Each dialect's pass-through adapter, made per request with the model its replies name
# (the one the client asked for: wire/providers/messages_native.py says why).
# Responses replies pass through as the upstream wrote them: one adapter serves all.
RESPONSES_NATIVE = ResponsesNativeAdapter()
NATIVE: dict[str, Callable[[str], Adapter]] = {
    "messages": MessagesNativeAdapter,
    "responses": lambda _model: RESPONSES_NATIVE,
}
# The dialect each chat adapter family speaks to its provider, for the usage record.
FAMILY_DIALECT = {"openai": "chat", "azure": "chat", "anthropic": "messages"}


def candidates(team: TeamContext, model: str) -> tuple[Target, ...] | None:
    targets = team.routes.get(model)
    if targets is not None:
        return targets
    targets = team.offered.get(model)
    if targets is not None:
        return targets
    prefix, slash, rest = model.partition("/")
    if slash and rest:
        placeholders = team.by_prefix.get(prefix)
        if placeholders:
            return tuple(replace(t, upstream=replace(t.upstream, model=rest)) for t in placeholders)
    return None


def order(
    targets: tuple[Target, ...], cooldowns: Cooldowns, rng: random.Random | None = None
) -> list[Target]:
    rng = rng or random._inst
    by_priority: dict[int, list[Target]] = {}
    for target in targets:
        by_priority.setdefault(target.priority, []).append(target)
    ordered: list[Target] = []
    for priority in sorted(by_priority):
        ordered.extend(_weighted_shuffle(by_priority[priority], rng))
    ready = [t for t in ordered if not cooldowns.cooling(t.key)]
    cooling = [t for t in ordered if cooldowns.cooling(t.key)]
    return ready + cooling


def _weighted_shuffle(targets: list[Target], rng: random.Random) -> list[Target]:
    if len(targets) == 1:
        return targets
    # Efraimidis-Spirakis: sort by u ** (1 / weight); P(first) is proportional to weight.
    return sorted(targets, key=lambda t: rng.random() ** (1.0 / max(t.weight, 1)), reverse=True)


def adapter_for(
    dialect: Dialect, target: Target, ask: Ask, seal: Callable[[str], str] | None = None
) -> tuple[Adapter, str]:
    """The adapter that takes a ``dialect`` request to ``target``, and the dialect it
    speaks upstream: native when the target serves the dialect, else through chat
    (``seal``: how Baton seals reasoning it hands a Responses client, gateway/turns.py)."""
    family = target.upstream.family
    if dialect.pivot is None:  # a chat client: the provider's chat adapter, as ever
        return get_adapter(family), FAMILY_DIALECT.get(family, "chat")
    native = NATIVE.get(dialect.name)
    if native is not None and dialect.name in target.upstream.natives:
        return native(ask.model), dialect.name
    return TranslatedAdapter(dialect.pivot, get_adapter(family), ask, seal), FAMILY_DIALECT.get(
        family, "chat"
    )


def counts_tokens(target: Target) -> bool:
    """Whether the target answers Messages' count_tokens itself."""
    return (
        "messages" in target.upstream.natives
        and messages_quirks_for(target.upstream.provider).count_tokens
    )
