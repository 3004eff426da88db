"""What the relay knows about a key and a team, loaded once and kept in memory.

``load_key`` and ``load_team`` are the cold path: synchronous ORM queries and
decryption, run in a worker thread by the cache. The results are immutable
snapshots that warm requests read without touching the database.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import dataclass, field

from accounts import tokens
from accounts.models import ApiKey, Team
from billing.quota.snapshots import NO_LIMITS, NO_QUOTA, Limits, TeamQuota, key_limits, team_quota
from relay.models import ModelRoute, ProviderCredential
from relay.secrets import CredentialBroken, reveal_secret, team_data_key
from wire.providers import Upstream

log = logging.getLogger("baton.relay")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class KeyContext:
    key_id: str
    name: str
    team_id: str
    allowed_models: frozenset[str] | None
    networks: tuple[IPNetwork, ...]
    expires_at: float | None
    revoked: bool
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    # Every limit of the key, budgets included, for the admit step.
    limits: Limits = NO_LIMITS
    loaded_at: float = field(default_factory=time.monotonic)

    def refusal(self, client_ip: str | None, now: float) -> str | None:
        """Why this key may not be used right now, or None."""
        if self.revoked:
            return "This API key has been revoked."
        if self.expires_at is not None and now >= self.expires_at:
            return "This API key has expired."
        if self.networks:
            try:
                address = ipaddress.ip_address(client_ip or "")
            except ValueError:
                return "This API key is not allowed from this address."
            if not any(address in network for network in self.networks):
                return "This API key is not allowed from this address."
        return None

    def allows_model(self, model: str) -> bool:
        return self.allowed_models is None or model in self.allowed_models


@dataclass(frozen=True, slots=True)
class Target:
    """One place a request can go: a credential and an upstream model."""

    credential_id: str
    credential_name: str
    provider_name: str
    upstream: Upstream
    priority: int = 0
    weight: int = 1

    @property
    def key(self) -> str:
        return f"{self.credential_id}:{self.upstream.model}"


@dataclass(frozen=True, slots=True)
class TeamContext:
    team_id: str
    routes: dict[str, tuple[Target, ...]]
    # Upstream models offered directly by the team's credentials.
    offered: dict[str, tuple[Target, ...]]
    # "provider-or-credential-name" -> credential targets (model filled per request).
    by_prefix: dict[str, tuple[Target, ...]]
    loaded_at: float = field(default_factory=time.monotonic)
    # The team's limits, currency, credit and model prices, for the admit step.
    quota: TeamQuota = NO_QUOTA
    # The team's data key when it lets Baton keep a turn's reasoning between requests
    # (gateway/turns.py); None when it does not.
    reasoning_key: bytes | None = None

    def model_names(self) -> list[str]:
        return sorted(set(self.routes) | set(self.offered))


def load_key(presented: str) -> KeyContext | None:
    lookup = tokens.split(presented, ApiKey.PREFIX)
    if lookup is None:
        return None
    key = ApiKey.objects.filter(lookup=lookup).first()
    if key is None or not tokens.matches(presented, key.digest):
        return None
    networks = []
    for cidr in key.ip_allowlist or []:
        try:
            networks.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            log.warning("ignoring invalid CIDR %r on API key %s", cidr, key.pk)
    return KeyContext(
        key_id=str(key.pk),
        name=key.name,
        team_id=str(key.team_id),
        allowed_models=frozenset(key.allowed_models) if key.allowed_models else None,
        networks=tuple(networks),
        expires_at=key.expires_at.timestamp() if key.expires_at else None,
        revoked=key.revoked_at is not None,
        rpm_limit=key.rpm_limit,
        tpm_limit=key.tpm_limit,
        limits=key_limits(key),
    )


def _upstream(credential: ProviderCredential, secret: str, model: str) -> Upstream:
    return Upstream(
        provider=credential.provider_id,
        family=credential.provider.family,
        base_url=credential.effective_base_url().rstrip("/"),
        api_key=secret,
        model=model,
        extras=credential.extras or {},
        natives=credential.native_dialects(),
    )


def load_team(team_id: str) -> TeamContext:
    credentials = list(
        ProviderCredential.objects.filter(team_id=team_id, enabled=True, status="ok")
        .select_related("provider", "team")
        .order_by("created_at")
    )
    secrets: dict[str, str] = {}
    for credential in credentials:
        try:
            secrets[str(credential.pk)] = reveal_secret(credential)
        except CredentialBroken:
            continue  # marked broken and audited by reveal_secret; route around it

    def target(
        credential: ProviderCredential, model: str, priority: int = 0, weight: int = 1
    ) -> Target:
        return Target(
            credential_id=str(credential.pk),
            credential_name=credential.name,
            provider_name=credential.provider.name,
            upstream=_upstream(credential, secrets[str(credential.pk)], model),
            priority=priority,
            weight=weight,
        )

    usable = [c for c in credentials if str(c.pk) in secrets]
    offered: dict[str, list[Target]] = {}
    by_prefix: dict[str, list[Target]] = {}
    for credential in usable:
        models = list(credential.provider.known_models or []) + list(
            credential.provider.embedding_models or []
        )
        for model in models:
            offered.setdefault(model, []).append(target(credential, model))
        placeholder = target(credential, "")
        by_prefix.setdefault(credential.provider_id, []).append(placeholder)
        by_prefix.setdefault(credential.name, []).append(placeholder)

    routes: dict[str, tuple[Target, ...]] = {}
    usable_ids = {c.pk for c in usable}
    by_id = {c.pk: c for c in usable}
    for route in ModelRoute.objects.filter(team_id=team_id).prefetch_related("targets"):
        targets = [
            target(by_id[t.credential_id], t.upstream_model, t.priority, t.weight)
            for t in route.targets.all()
            if t.credential_id in usable_ids
        ]
        routes[route.alias] = tuple(sorted(targets, key=lambda t: t.priority))
    team = Team.objects.get(pk=team_id)
    return TeamContext(
        team_id=team_id,
        reasoning_key=team_data_key(team) if team.remember_reasoning else None,
        routes=routes,
        offered={k: tuple(v) for k, v in offered.items()},
        by_prefix={k: tuple(v) for k, v in by_prefix.items()},
        quota=team_quota(team_id, {c.provider_id for c in credentials}),
    )
