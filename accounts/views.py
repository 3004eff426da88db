"""Pages for teams, members, invitations, the audit log and access tokens."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from accounts import actions, tokens
from accounts.api.auth import PAT_PREFIX
from accounts.context_processors import current_team
from accounts.forms import AccessTokenForm, InviteForm, ReasoningMemoryForm, RoleForm, TeamForm
from accounts.models import Membership, PersonalAccessToken, Role
from accounts.pages import refusals_on, submitted
from accounts.tenancy import SESSION_TEAM_KEY, current_user, get_for_team, get_membership, team_view


def landing(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("dashboard")
    return render(request, "landing.html")


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """Send the user to the team they were last working in."""
    current = current_team(request).get("current_membership")
    if current is None:
        return redirect("team_create")
    return redirect("team_overview", team_id=current.team_id)


@login_required
def team_create(request: HttpRequest) -> HttpResponse:
    form = TeamForm(request.POST or None)
    if submitted(request, form):
        team = actions.create_team(
            current_user(request), name=form.cleaned_data["name"], request=request
        )
        messages.success(request, _("Team %(name)s created.") % {"name": team.name})
        return redirect("team_overview", team_id=team.pk)
    return render(request, "accounts/team_create.html", {"form": form})


@login_required
@require_POST
def team_switch(request: HttpRequest) -> HttpResponse:
    membership = get_membership(request, request.POST.get("team_id", ""))
    request.session[SESSION_TEAM_KEY] = str(membership.team_id)
    return redirect("team_overview", team_id=membership.team_id)


def _duration(seconds: int) -> str:
    """A whole number of hours or minutes, as the settings page says how long."""
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return ngettext("%(count)d hour", "%(count)d hours", hours) % {"count": hours}
    minutes = max(1, round(seconds / 60))
    return ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}


@team_view(write_role=Role.ADMIN)
def team_settings(request: HttpRequest, membership: Membership) -> HttpResponse:
    team = membership.team
    posted = request.POST if request.method == "POST" else None
    # Each card posts its own form; the reasoning card says which it is.
    on_reasoning = posted is not None and posted.get("section") == "reasoning"
    form = TeamForm(None if on_reasoning else posted, initial={"name": team.name})
    reasoning = ReasoningMemoryForm(
        posted if on_reasoning else None,
        initial={"remember_reasoning": team.remember_reasoning},
    )
    if not membership.has_role(Role.ADMIN):
        reasoning.fields["remember_reasoning"].disabled = True
    if on_reasoning:
        if submitted(request, reasoning):
            with refusals_on(reasoning):
                remember = reasoning.cleaned_data["remember_reasoning"]
                actions.set_remember_reasoning(membership, remember, request=request)
                messages.success(
                    request,
                    _("Baton now remembers reasoning between turns.")
                    if remember
                    else _("Baton no longer keeps any reasoning between turns."),
                )
                return redirect("team_settings", team_id=team.pk)
    elif submitted(request, form):
        with refusals_on(form):
            actions.rename_team(membership, form.cleaned_data["name"], request=request)
            messages.success(request, _("Team renamed."))
            return redirect("team_settings", team_id=team.pk)
    return render(
        request,
        "accounts/settings.html",
        {
            "team": team,
            "membership": membership,
            "form": form,
            "reasoning_form": reasoning,
            "reasoning_kept_for": _duration(settings.BATON_TURN_MEMORY_SECONDS),
        },
    )


@team_view(write_role=Role.ADMIN)
def team_members(request: HttpRequest, membership: Membership) -> HttpResponse:
    team = membership.team
    form = InviteForm(request.POST or None)
    issued = None
    if submitted(request, form):
        with refusals_on(form):
            issued = actions.invite(
                membership,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                request=request,
            )
            messages.success(
                request, _("Invitation sent to %(email)s.") % {"email": issued.invitation.email}
            )
            form = InviteForm()
    context = {
        "team": team,
        "membership": membership,
        "members": team.memberships.select_related("user").order_by("created_at"),
        "invitations": [
            i
            for i in team.invitations.filter(accepted_at=None, revoked_at=None)
            if not i.is_expired
        ],
        "form": form,
        "issued": issued,
        "roles": Role.choices,
        "can_manage": actions.can_manage_members(membership),
    }
    response = render(request, "accounts/members.html", context)
    if issued is not None:
        # The page holds the only copy of the invitation link: keep it out of caches.
        response["Cache-Control"] = "no-store"
    return response


@team_view(write_role=Role.VIEWER)
@require_POST
def member_role(request: HttpRequest, membership: Membership, membership_id: int) -> HttpResponse:
    target = get_for_team(
        Membership.objects.select_related("user"), membership.team_id, pk=membership_id
    )
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a valid role."))
    else:
        try:
            actions.change_role(membership, target, form.cleaned_data["role"], request=request)
        except actions.TeamRuleError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request, _("Role of %(email)s changed.") % {"email": target.user.email}
            )
    return redirect("team_members", team_id=membership.team_id)


@team_view(write_role=Role.VIEWER)
@require_http_methods(["GET", "HEAD", "POST"])
def member_remove(request: HttpRequest, membership: Membership, membership_id: int) -> HttpResponse:
    """GET: what removing the member (or leaving) does, and its button. POST: do it."""
    target = get_for_team(
        Membership.objects.select_related("user"), membership.team_id, pk=membership_id
    )
    leaving = target.pk == membership.pk
    if request.method != "POST":
        try:
            actions.check_removal(membership, target)
        except actions.TeamRuleError as exc:
            messages.error(request, str(exc))
            return redirect("team_members", team_id=membership.team_id)
        return render(
            request,
            "accounts/member_remove.html",
            {
                "team": membership.team,
                "membership": membership,
                "target": target,
                "leaving": leaving,
                "keys": actions.keys_revoked_on_removal(target),
            },
        )
    try:
        actions.remove_member(membership, target, request=request)
    except actions.TeamRuleError as exc:
        messages.error(request, str(exc))
        return redirect("team_members", team_id=membership.team_id)
    if leaving:
        messages.success(request, _("You left %(team)s.") % {"team": membership.team.name})
        return redirect("dashboard")
    messages.success(request, _("%(email)s was removed.") % {"email": target.user.email})
    return redirect("team_members", team_id=membership.team_id)


@team_view(write_role=Role.ADMIN)
@require_POST
def invitation_revoke(
    request: HttpRequest, membership: Membership, invitation_id: int
) -> HttpResponse:
    invitation = get_for_team(
        membership.team.invitations.all(), membership.team_id, pk=invitation_id
    )
    try:
        actions.revoke_invitation(membership, invitation, request=request)
    except actions.TeamRuleError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Invitation revoked."))
    return redirect("team_members", team_id=membership.team_id)


@team_view(min_role=Role.ADMIN)
def team_audit(request: HttpRequest, membership: Membership) -> HttpResponse:
    events = membership.team.audit_events.all()
    action_filter = request.GET.get("action", "").strip()[:64]
    if action_filter:
        events = events.filter(action__startswith=action_filter)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "accounts/audit.html",
        {
            "team": membership.team,
            "membership": membership,
            "page": page,
            "action_filter": action_filter,
        },
    )


def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    invitation = actions.find_invitation(token)
    error = None
    if invitation is None or invitation.revoked_at is not None:
        error = _("This invitation link is not valid. Ask for a new one.")
    elif invitation.accepted_at is not None:
        error = _("This invitation has already been used.")
    elif invitation.is_expired:
        error = _("This invitation has expired. Ask for a new one.")
    if request.method == "POST" and error is None and request.user.is_authenticated:
        try:
            membership = actions.accept_invitation(current_user(request), token, request=request)
        except actions.TeamRuleError as exc:
            error = str(exc)
        else:
            messages.success(request, _("Welcome to %(team)s.") % {"team": membership.team.name})
            return redirect("team_overview", team_id=membership.team_id)
    status = 200 if error is None else 400 if invitation is not None else 404
    return render(
        request,
        "accounts/invitation.html",
        {"invitation": invitation, "error": error, "token": token},
        status=status,
    )


@login_required
def access_tokens(request: HttpRequest) -> HttpResponse:
    form = AccessTokenForm(request.POST or None)
    issued = None
    if submitted(request, form):
        issued = tokens.issue(PAT_PREFIX)
        PersonalAccessToken.objects.create(
            user=current_user(request),
            name=form.cleaned_data["name"],
            lookup=issued.lookup,
            digest=issued.digest,
            last4=issued.last4,
        )
        form = AccessTokenForm()
    response = render(
        request,
        "accounts/tokens.html",
        {
            "form": form,
            "issued": issued,
            "tokens": current_user(request).access_tokens.filter(revoked_at=None),
        },
    )
    if issued is not None:
        # The page holds the only copy of the token: keep it out of caches.
        response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def access_token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(
        PersonalAccessToken, pk=token_id, user=current_user(request), revoked_at=None
    )
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    messages.success(request, _("Token revoked."))
    return redirect("access_tokens")
