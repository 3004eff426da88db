"""Pages for limits and credits.

Everyone in the team sees the limits and the current use against each of
them, and the credit balance; owners and admins change limits and redeem
codes. Top-ups, currency and billing mode are the operator's (Django admin).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import ApiKey, Membership, Role
from accounts.pages import refusals_on, submitted
from accounts.tenancy import get_for_team, team_view
from billing import credits
from billing import limits as actions
from billing.forms import CredentialLimitsForm, KeyLimitsForm, RedeemForm, TeamLimitsForm
from billing.models import CredentialLimits, CreditEntry, KeyLimits, TeamLimits
from billing.money import display
from billing.quota.live import ScopeUse, current_use
from billing.quota.snapshots import Limits, key_budget_caps
from billing.usage import period_end
from relay.models import ProviderCredential


@dataclass(frozen=True)
class Meter:
    """One limit and the current use against it, ready for a template."""

    label: str
    limit: str | None
    used: str
    percent: int | None
    note: str = ""


def _pct(used: Decimal | int, limit: Decimal | int | None) -> int | None:
    if limit is None:
        return None
    if not limit:
        return 100
    return min(100, int(Decimal(used) * 100 / Decimal(limit)))


def _money(value: Decimal | None, currency: str) -> str | None:
    return None if value is None else f"{display(value)} {currency}"


def meters(
    rpm: int | None,
    tpm: int | None,
    concurrency: int | None,
    budgets: dict[str, Decimal | None],
    use: ScopeUse | None,
    currency: str,
) -> list[Meter]:
    """Meters for one scope; without live use only the limits are shown."""
    out: list[Meter] = []
    rows: list[tuple[Any, int | None, int | None]] = [
        (
            gettext_lazy("Requests per minute"),
            rpm,
            rpm - use.rpm_remaining if use and rpm and use.rpm_remaining is not None else None,
        ),
        (
            gettext_lazy("Tokens per minute"),
            tpm,
            tpm - use.tpm_remaining if use and tpm and use.tpm_remaining is not None else None,
        ),
        (gettext_lazy("Concurrent requests"), concurrency, use.in_flight if use else None),
    ]
    for label, limit, used in rows:
        out.append(
            Meter(
                label=str(label),
                limit=None if limit is None else f"{limit:,}",
                used="—" if used is None else f"{max(0, used):,}",
                percent=_pct(max(0, used or 0), limit) if used is not None else None,
            )
        )
    labels = {
        "day": (gettext_lazy("Daily budget"), gettext_lazy("spent today")),
        "month": (gettext_lazy("Monthly budget"), gettext_lazy("spent this month")),
        "lifetime": (gettext_lazy("Lifetime budget"), gettext_lazy("spent in total")),
    }
    for period, cap in budgets.items():
        label, what = labels[period]
        spent = (
            {"day": use.day, "month": use.month, "lifetime": use.lifetime}[period] if use else None
        )
        end = period_end(period)
        note = str(what)
        if use and use.held:
            note += " " + _("(plus %(held)s held by requests in flight)") % {
                "held": _money(use.held, currency)
            }
        if cap is not None and end is not None:
            note += " · " + _("resets %(when)s UTC") % {"when": f"{end:%Y-%m-%d %H:%M}"}
        out.append(
            Meter(
                label=str(label),
                limit=_money(cap, currency),
                used="—" if spent is None else _money(spent, currency) or "",
                percent=_pct(spent + (use.held if use else 0), cap) if spent is not None else None,
                note=note,
            )
        )
    return out


def _team_limits_snapshot(row: TeamLimits) -> Limits:
    return Limits(rpm=row.rpm_limit, tpm=row.tpm_limit)


def _team_context(membership: Membership) -> dict[str, Any]:
    return {
        "team": membership.team,
        "membership": membership,
        "can_edit": actions.can_edit(membership),
    }


@team_view(write_role=Role.ADMIN)
def team_limits(request: HttpRequest, membership: Membership) -> HttpResponse:
    team = membership.team
    row = actions.team_limits(team.pk)
    form = TeamLimitsForm(
        request.POST or None, initial={name: getattr(row, name) for name in actions.TEAM_FIELDS}
    )
    if submitted(request, form):
        actions.update_team_limits(membership, request=request, **form.cleaned_data)
        messages.success(request, _("Team limits saved. They apply to requests within a second."))
        return redirect("team_limits", team_id=team.pk)

    keys = list(ApiKey.objects.active().filter(team=team).order_by("name"))
    extra = {k.api_key_id: k for k in KeyLimits.objects.filter(team=team)}
    live = current_use(
        team.pk,
        _team_limits_snapshot(row),
        [(key.pk, Limits(rpm=key.rpm_limit, tpm=key.tpm_limit)) for key in keys],
    )
    team_use, key_use = live if live is not None else (None, {})
    key_rows = []
    for key in keys:
        caps = key_budget_caps(key, extra.get(key.pk))
        key_rows.append(
            {
                "key": key,
                "meters": meters(
                    key.rpm_limit,
                    key.tpm_limit,
                    extra[key.pk].max_concurrent if key.pk in extra else None,
                    caps,
                    key_use.get(str(key.pk)),
                    row.currency,
                ),
            }
        )
    credential_limits = {c.credential_id: c for c in CredentialLimits.objects.filter(team=team)}
    credentials = [
        {"credential": c, "limits": credential_limits.get(c.pk)}
        for c in ProviderCredential.objects.filter(team=team).select_related("provider")
    ]
    return render(
        request,
        "billing/limits.html",
        {
            **_team_context(membership),
            "form": form,
            "row": row,
            "live": live is not None,
            "team_meters": meters(
                row.rpm_limit,
                row.tpm_limit,
                row.max_concurrent,
                {"day": row.daily_budget, "month": row.monthly_budget},
                team_use,
                row.currency,
            ),
            "key_rows": key_rows,
            "credentials": credentials,
            "balance": credits.balance(team),
        },
    )


@team_view(write_role=Role.ADMIN)
def key_limits(request: HttpRequest, membership: Membership, key_id: uuid.UUID) -> HttpResponse:
    team = membership.team
    api_key = get_for_team(ApiKey, team.pk, pk=key_id)
    extra = actions.key_limits(api_key)
    initial = {name: getattr(extra, name) for name in actions.KEY_FIELDS if hasattr(extra, name)}
    initial |= {"rpm_limit": api_key.rpm_limit, "tpm_limit": api_key.tpm_limit}
    form = KeyLimitsForm(request.POST or None, initial=initial)
    if request.method == "POST" and api_key.revoked_at is not None:
        raise PermissionDenied
    if submitted(request, form):
        with refusals_on(form):
            actions.update_key_limits(membership, api_key, request=request, **form.cleaned_data)
            messages.success(
                request,
                _("Limits of “%(name)s” saved. They apply within a second.")
                % {"name": api_key.name},
            )
            return redirect("key_limits", team_id=team.pk, key_id=api_key.pk)
    row = actions.team_limits(team.pk)
    live = current_use(
        team.pk,
        _team_limits_snapshot(row),
        [(api_key.pk, Limits(rpm=api_key.rpm_limit, tpm=api_key.tpm_limit))],
    )
    return render(
        request,
        "billing/key_limits.html",
        {
            **_team_context(membership),
            "form": form,
            "api_key": api_key,
            "live": live is not None,
            "meters": meters(
                api_key.rpm_limit,
                api_key.tpm_limit,
                extra.max_concurrent,
                key_budget_caps(api_key, extra),
                live[1].get(str(api_key.pk)) if live else None,
                row.currency,
            ),
            "currency": row.currency,
            "balance": credits.balance(team),
        },
    )


@team_view(write_role=Role.ADMIN)
def credential_limits(
    request: HttpRequest, membership: Membership, credential_id: uuid.UUID
) -> HttpResponse:
    team = membership.team
    credential = get_for_team(
        ProviderCredential.objects.select_related("provider"), team.pk, pk=credential_id
    )
    current = actions.credential_limits(credential)
    form = CredentialLimitsForm(
        request.POST or None,
        initial={"rpm_limit": current.rpm_limit, "tpm_limit": current.tpm_limit},
    )
    if submitted(request, form):
        actions.update_credential_limits(
            membership, credential, request=request, **form.cleaned_data
        )
        messages.success(request, _("Limits of “%(name)s” saved.") % {"name": credential.name})
        return redirect("team_limits", team_id=team.pk)
    return render(
        request,
        "billing/credential_limits.html",
        {**_team_context(membership), "form": form, "credential": credential},
    )


@team_view(write_role=Role.ADMIN)
def team_credits(request: HttpRequest, membership: Membership) -> HttpResponse:
    team = membership.team
    form = RedeemForm(request.POST or None)
    if submitted(request, form):
        with refusals_on(form, "code", credits.CreditError):
            entry = credits.redeem(membership, form.cleaned_data["code"], request=request)
            messages.success(
                request,
                _("Code redeemed: %(amount)s %(currency)s added to your credit.")
                % {"amount": display(entry.amount), "currency": entry.currency},
            )
            return redirect("team_credits", team_id=team.pk)
    entries = Paginator(CreditEntry.objects.filter(team=team).select_related("created_by"), 50)
    return render(
        request,
        "billing/credits.html",
        {
            **_team_context(membership),
            "form": form,
            "balance": credits.balance(team),
            "row": actions.team_limits(team.pk),
            "entries": entries.get_page(request.GET.get("page")),
        },
    )
