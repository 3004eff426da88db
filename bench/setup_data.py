"""Create the benchmark's tenant through Baton's own code: a team, an API key, credentials that
point at the fake upstreams, model aliases, and (when the quota feature exists) generous limits
so that admission runs on every request without ever refusing one; and a second team with
the same routes and no limits.

    python bench/setup_data.py SPEC_JSON   ->  prints {"key": ..., "open_key": ..., "limits": ...}
"""

from __future__ import annotations

import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from accounts import actions, tokens  # noqa: E402
from accounts.models import ApiKey, Team, User  # noqa: E402
from billing import credits  # noqa: E402
from relay.catalog_seed import seed  # noqa: E402
from relay.models import ModelRoute, Provider, ProviderCredential, RouteTarget  # noqa: E402
from relay.secrets import store_secret  # noqa: E402


def credential(
    team: Team, name: str, base_url: str, provider: str, extras: dict[str, Any]
) -> ProviderCredential:
    row = ProviderCredential(
        team=team, name=name, provider_id=provider, base_url=base_url, extras=extras
    )
    store_secret(row, "sk-bench-upstream-0000")
    row.save()
    return row


def generous_limits(team: Team, key: ApiKey, credentials: list[ProviderCredential]) -> str:
    """Set every limit the quota feature knows, far above what the benchmark sends."""
    if not (ROOT / "gateway" / "admission.py").exists():
        return "no quota feature in this build (gateway/admission.py absent)"
    try:
        from billing import models as billing
    except ImportError as exc:
        return f"quota feature present but billing models not importable: {exc}"
    big_rate = {
        "rpm_limit": getattr(billing, "MAX_RPM", 10**7),
        "tpm_limit": getattr(billing, "MAX_TPM", 10**9),
        "max_concurrent": getattr(billing, "MAX_CONCURRENCY", 10**5),
    }
    budget = Decimal("1000000000")
    set_fields: list[str] = []

    def apply(model: Any, lookup: dict[str, Any], label: str) -> None:
        if model is None:
            return
        names = {f.name for f in model._meta.get_fields()}
        values = {k: v for k, v in big_rate.items() if k in names}
        values |= {
            k: budget for k in ("daily_budget", "monthly_budget", "lifetime_budget") if k in names
        }
        model.objects.update_or_create(**lookup, defaults=values)
        set_fields.append(f"{label}: " + ", ".join(f"{k}={v}" for k, v in sorted(values.items())))

    apply(getattr(billing, "TeamLimits", None), {"team": team}, "team")
    apply(getattr(billing, "KeyLimits", None), {"api_key": key, "team": team}, "key (extra limits)")
    for row in credentials:
        apply(
            getattr(billing, "CredentialLimits", None),
            {"credential": row, "team": team},
            f"credential {row.name}",
        )
    key_fields = {f.name for f in ApiKey._meta.get_fields()}
    own = {k: v for k, v in big_rate.items() if k in key_fields and k != "max_concurrent"}
    if own:
        ApiKey.objects.filter(pk=key.pk).update(**own)
        set_fields.append("key: " + ", ".join(f"{k}={v}" for k, v in sorted(own.items())))
    return "; ".join(set_fields) or "quota feature present, no limit fields found"


def tenant(
    name: str, email: str, aliases: dict[str, str | dict[str, Any]]
) -> tuple[Team, ApiKey, str, list[Any]]:
    """``aliases``: alias -> the base URL of an OpenAI-compatible credential serving
    ``demo-chat``, or {"base_url", and optionally "provider", "extras", "model"}."""
    owner = User.objects.create_user(email, "bench-sturdy-passphrase-1")
    team = actions.create_team(owner, name=name)
    # New teams start prepaid with a small signup credit; lines priced at real rates (the
    # Messages line's Claude model) would spend it within seconds and be refused.
    credits.add_credit(team, Decimal(10**6), actor=None, note="benchmark")
    rows = []
    for alias, target in aliases.items():
        spec: dict[str, Any] = {"base_url": target} if isinstance(target, str) else target
        row = credential(
            team,
            f"fake-{alias}",
            spec["base_url"],
            spec.get("provider", "openai"),
            spec.get("extras", {}),
        )
        route = ModelRoute.objects.create(team=team, alias=alias)
        RouteTarget.objects.create(
            team=team,
            route=route,
            credential=row,
            upstream_model=spec.get("model", "demo-chat"),
            priority=0,
        )
        rows.append(row)
    issued = tokens.issue(ApiKey.PREFIX)
    key = ApiKey.objects.create(
        team=team, name="bench", lookup=issued.lookup, digest=issued.digest, last4=issued.last4
    )
    return team, key, issued.token, rows


def main(spec: dict[str, Any]) -> dict[str, Any]:
    seed(Provider)
    team, key, token, rows = tenant("Benchmark", "bench@example.com", spec["aliases"])
    limits = generous_limits(team, key, rows)
    # A second team with the same routes and no limits at all: its requests skip the admission
    # call, so the benchmark can show what checking quotas costs under load.
    _, _, open_token, _ = tenant("Benchmark, no limits", "open@example.com", spec["aliases"])
    return {"key": token, "open_key": open_token, "team_id": str(team.pk), "limits": limits}


if __name__ == "__main__":
    result = main(orjson.loads(sys.argv[1]))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
