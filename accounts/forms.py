from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import Role
from accounts.validators import no_control_characters


class TeamForm(forms.Form):
    name = forms.CharField(
        label=_("Team name"), max_length=80, strip=True, validators=[no_control_characters]
    )


class ReasoningMemoryForm(forms.Form):
    remember_reasoning = forms.BooleanField(
        label=_("Remember reasoning between turns"), required=False
    )


class InviteForm(forms.Form):
    email = forms.EmailField(label=_("Email address"), max_length=254)
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class AccessTokenForm(forms.Form):
    name = forms.CharField(
        label=_("Token name"), max_length=80, strip=True, validators=[no_control_characters]
    )
