"""From the ``model`` a client sent to the ordered list of targets to try.

1. A team alias (``gpt-4o`` -> ``qwen-plus`` on DashScope, then ``glm-4.6``).
2. ``provider/model`` or ``credential-name/model``: that model on those credentials.
3. A model one of the team's credentials offers directly.

Within a priority, targets are shuffled by weight; lower priorities come
first. Targets in cooldown go to the back rather than away, so a team whose
every target is cooling still gets an answer if one has recovered.
"""

from __future__ import annotations

import random
from dataclasses import replace

from gateway.contexts import Target, TeamContext
from gateway.cooldown import Cooldowns


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
