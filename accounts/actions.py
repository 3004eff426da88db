"""Team and membership actions.

Views and API endpoints stay thin and call these. Each action checks the
rules, changes rows in one transaction, writes its audit event, and sends any
email only after the transaction commits.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import audit, mail
from accounts.invalidation import bump_team
from accounts.models import ApiKey, Invitation, Membership, Role, Team, User, role_at_least
from accounts.validators import single_line


class TeamRuleError(Exception):
    """An action the rules forbid; the message is shown to the user as is."""


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    url: str  # contains the only copy of the token


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_team(
    user: User, *, name: str, personal: bool = False, request: HttpRequest | None = None
) -> Team:
    with transaction.atomic():
        team = Team.objects.create(name=name.strip(), is_personal=personal)
        Membership.objects.create(team=team, user=user, role=Role.OWNER)
        audit.record(team, user, "team.created", team, request=request, personal=personal)
    return team


def rename_team(actor: Membership, name: str, *, request: HttpRequest | None = None) -> Team:
    if not actor.has_role(Role.ADMIN):
        raise TeamRuleError(_("Only owners and admins can rename the team."))
    team = actor.team
    old = team.name
    with transaction.atomic():
        team.name = name.strip()
        team.save(update_fields=["name"])
        audit.record(
            team, actor.user, "team.renamed", team, request=request, old=old, new=team.name
        )
    return team


def set_remember_reasoning(
    actor: Membership, remember: bool, *, request: HttpRequest | None = None
) -> Team:
    """Turn the relay's memory of agent turns' reasoning on or off for the team. Saving the
    team tells the relay (accounts/signals.py), which stops keeping and giving back
    reasoning within a second."""
    if not actor.has_role(Role.ADMIN):
        raise TeamRuleError(_("Only owners and admins can change the team's settings."))
    team = actor.team
    if team.remember_reasoning == remember:
        return team
    with transaction.atomic():
        old = team.remember_reasoning
        team.remember_reasoning = remember
        team.save(update_fields=["remember_reasoning"])
        audit.record(
            team,
            actor.user,
            "team.settings_changed",
            team,
            request=request,
            changes={"remember_reasoning": {"old": old, "new": remember}},
        )
    return team


def _check_can_grant(actor: Membership, role: str) -> None:
    if not actor.has_role(Role.ADMIN):
        raise TeamRuleError(_("Only owners and admins can manage members."))
    if role == Role.OWNER and actor.role != Role.OWNER:
        raise TeamRuleError(_("Only an owner can make someone an owner."))


def invite(
    actor: Membership, *, email: str, role: str, request: HttpRequest | None = None
) -> IssuedInvitation:
    _check_can_grant(actor, role)
    email = email.strip().lower()
    team = actor.team
    if team.memberships.filter(user__email__iexact=email).exists():
        raise TeamRuleError(_("%(email)s is already a member of this team.") % {"email": email})
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        # A new invitation to the same address replaces any pending one.
        team.invitations.filter(email__iexact=email, accepted_at=None, revoked_at=None).update(
            revoked_at=timezone.now()
        )
        invitation = Invitation.objects.create(
            team=team,
            email=email,
            role=role,
            token_hash=_hash_token(token),
            invited_by=actor.user,
            expires_at=timezone.now() + timedelta(days=settings.INVITATION_TTL_DAYS),
        )
        audit.record(
            team,
            actor.user,
            "invitation.created",
            invitation,
            request=request,
            email=email,
            role=role,
        )
        url = settings.SITE_URL + reverse("invitation_accept", args=[token])
        if request is not None:
            url = request.build_absolute_uri(reverse("invitation_accept", args=[token]))
        transaction.on_commit(lambda: _send_invitation(invitation, url))
    return IssuedInvitation(invitation=invitation, url=url)


def _send_invitation(invitation: Invitation, url: str) -> None:
    context = {"invitation": invitation, "url": url, "ttl_days": settings.INVITATION_TTL_DAYS}
    mail.deliver(
        lambda: send_mail(
            # Names are checked on input; a row stored before that must not break the header.
            subject=_("You are invited to join %(team)s on Baton")
            % {"team": single_line(invitation.team.name)},
            message=render_to_string("accounts/email/invitation.txt", context),
            from_email=None,
            recipient_list=[invitation.email],
        ),
        "an invitation email",
    )


def find_invitation(token: str) -> Invitation | None:
    """The invitation for a token, whatever its state, or None."""
    return (
        Invitation.objects.select_related("team", "invited_by")
        .filter(token_hash=_hash_token(token))
        .first()
    )


def accept_invitation(user: User, token: str, *, request: HttpRequest | None = None) -> Membership:
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update()
            .select_related("team")
            .filter(token_hash=_hash_token(token))
            .first()
        )
        if invitation is None or invitation.revoked_at is not None:
            raise TeamRuleError(_("This invitation link is not valid. Ask for a new one."))
        if invitation.accepted_at is not None:
            raise TeamRuleError(_("This invitation has already been used."))
        if invitation.is_expired:
            raise TeamRuleError(_("This invitation has expired. Ask for a new one."))
        if invitation.email.lower() != user.email.lower():
            raise TeamRuleError(
                _("This invitation was sent to %(email)s. Log in with that address to accept it.")
                % {"email": invitation.email}
            )
        team = invitation.team
        if team.memberships.filter(user=user).exists():
            raise TeamRuleError(_("You are already a member of this team."))
        membership = Membership.objects.create(team=team, user=user, role=invitation.role)
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        audit.record(team, user, "member.joined", membership, request=request, role=invitation.role)
    return membership


def revoke_invitation(
    actor: Membership, invitation: Invitation, *, request: HttpRequest | None = None
) -> None:
    _check_can_grant(actor, invitation.role)
    if not invitation.is_pending:
        raise TeamRuleError(_("This invitation is no longer pending."))
    with transaction.atomic():
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        audit.record(actor.team, actor.user, "invitation.revoked", invitation, request=request)


def _owner_count(team: Team) -> int:
    return team.memberships.filter(role=Role.OWNER).count()


def change_role(
    actor: Membership, target: Membership, role: str, *, request: HttpRequest | None = None
) -> Membership:
    _check_can_grant(actor, role)
    if target.role == Role.OWNER and actor.role != Role.OWNER:
        raise TeamRuleError(_("Only an owner can change another owner's role."))
    with transaction.atomic():
        # Lock the team's owner rows so two demotions cannot both pass the check.
        list(Membership.objects.select_for_update().filter(team=actor.team, role=Role.OWNER))
        if target.role == Role.OWNER and role != Role.OWNER and _owner_count(actor.team) <= 1:
            raise TeamRuleError(
                _("A team needs at least one owner. Make someone else owner first.")
            )
        old = target.role
        target.role = role
        target.save(update_fields=["role"])
        audit.record(
            actor.team,
            actor.user,
            "member.role_changed",
            target,
            request=request,
            old=old,
            new=role,
        )
    return target


def check_removal(actor: Membership, target: Membership) -> None:
    """Raise TeamRuleError if ``actor`` may not remove ``target`` (or leave, if the same)."""
    if target.pk == actor.pk:
        if actor.role == Role.OWNER and _owner_count(actor.team) <= 1:
            raise TeamRuleError(
                _("You are the last owner of this team. Make someone else owner before you leave.")
            )
        return
    if not actor.has_role(Role.ADMIN):
        raise TeamRuleError(_("Only owners and admins can remove members."))
    if target.role == Role.OWNER and actor.role != Role.OWNER:
        raise TeamRuleError(_("Only an owner can remove another owner."))


def keys_revoked_on_removal(membership: Membership) -> QuerySet[ApiKey]:
    """The API keys that removing (or the leaving of) this member revokes: the active keys
    they created in the team. A former member must not keep working access to /v1."""
    return ApiKey.objects.filter(
        team_id=membership.team_id, created_by_id=membership.user_id, revoked_at=None
    ).order_by("name", "created_at")


def _revoke_keys_of(
    membership: Membership, actor: User, reason: str, request: HttpRequest | None
) -> list[ApiKey]:
    """Inside the removal's transaction: revoke and audit each key, then invalidate the
    relay's caches once it commits (effective on /v1 within a second, like any revoke)."""
    keys = list(keys_revoked_on_removal(membership).select_for_update())
    now = timezone.now()
    for key in keys:
        key.revoked_at = now
        key.revoked_by = actor
        key.save(update_fields=["revoked_at", "revoked_by"])
        audit.record(membership.team, actor, "api_key.revoked", key, request=request, reason=reason)
    if keys:
        bump_team(membership.team_id)
    return keys


def remove_member(
    actor: Membership, target: Membership, *, request: HttpRequest | None = None
) -> None:
    """Remove ``target`` from the team; the API keys they created in it are revoked."""
    if target.pk == actor.pk:
        leave_team(actor, request=request)
        return
    check_removal(actor, target)
    with transaction.atomic():
        revoked = _revoke_keys_of(target, actor.user, "member_removed", request)
        audit.record(
            actor.team,
            actor.user,
            "member.removed",
            target,
            request=request,
            role=target.role,
            revoked_api_keys=[str(key.pk) for key in revoked],
        )
        target.delete()


def leave_team(membership: Membership, *, request: HttpRequest | None = None) -> None:
    """Leave the team; the API keys the member created in it are revoked."""
    team = membership.team
    with transaction.atomic():
        list(Membership.objects.select_for_update().filter(team=team, role=Role.OWNER))
        check_removal(membership, membership)
        revoked = _revoke_keys_of(membership, membership.user, "member_left", request)
        audit.record(
            team,
            membership.user,
            "member.left",
            membership,
            request=request,
            revoked_api_keys=[str(key.pk) for key in revoked],
        )
        membership.delete()


def can_manage_members(membership: Membership) -> bool:
    return role_at_least(membership.role, Role.ADMIN)
