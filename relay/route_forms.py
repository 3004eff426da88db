"""Input rules and forms for model routes (aliases and their targets).

The rules are shared by the pages and the API (``relay.api.routes``), so a bad
value gets the same message in both places. A target's credential is always
looked up among the team's own credentials: an id from another team is
"not one of this team's provider keys", never a row to trust.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms import formset_factory
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import Team
from relay.models import ModelRoute, ProviderCredential

MAX_ALIAS_LENGTH = 128
MAX_MODEL_LENGTH = 128
MAX_DESCRIPTION_LENGTH = 255
MIN_PRIORITY, MAX_PRIORITY = 0, 100
MIN_WEIGHT, MAX_WEIGHT = 1, 1000
MAX_TARGETS = 20


@dataclass(frozen=True)
class TargetSpec:
    """One cleaned target: a credential of the route's team and an upstream model."""

    credential: ProviderCredential
    upstream_model: str
    priority: int = 0
    weight: int = 1

    def describe(self) -> dict[str, Any]:
        """What the audit log keeps about a target."""
        return {
            "credential": str(self.credential.pk),
            "credential_name": self.credential.name,
            "upstream_model": self.upstream_model,
            "priority": self.priority,
            "weight": self.weight,
        }


# --- Shared rules (pages and API) ---------------------------------------------


def team_credentials(team: Team) -> QuerySet[ProviderCredential]:
    return ProviderCredential.objects.filter(team=team).select_related("provider")


def clean_alias(team: Team, alias: str, *, exclude: ModelRoute | None = None) -> str:
    """The model name clients send: 1-128 printable characters, no whitespace,
    unique in the team (case-sensitive, as the relay matches it)."""
    alias = (alias or "").strip()
    if not alias:
        raise ValidationError(_("Enter the model name your application sends."), code="required")
    if len(alias) > MAX_ALIAS_LENGTH:
        raise ValidationError(
            _("Use at most %(max)d characters.") % {"max": MAX_ALIAS_LENGTH}, code="max_length"
        )
    if any(c.isspace() for c in alias) or not alias.isprintable():
        raise ValidationError(
            _("A model name cannot contain spaces, line breaks or control characters."),
            code="invalid",
        )
    taken = ModelRoute.objects.filter(team=team, alias=alias)
    if exclude is not None:
        taken = taken.exclude(pk=exclude.pk)
    if taken.exists():
        raise ValidationError(
            _("This team already has a model alias named “%(alias)s”.") % {"alias": alias},
            code="unique",
        )
    return alias


def clean_description(description: str) -> str:
    description = (description or "").strip()
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise ValidationError(
            _("Use at most %(max)d characters.") % {"max": MAX_DESCRIPTION_LENGTH},
            code="max_length",
        )
    return description


def clean_upstream_model(model: str) -> str:
    model = (model or "").strip()
    if not model:
        raise ValidationError(
            _("Enter the model name at the provider, e.g. qwen-plus."), code="required"
        )
    if len(model) > MAX_MODEL_LENGTH:
        raise ValidationError(
            _("Use at most %(max)d characters.") % {"max": MAX_MODEL_LENGTH}, code="max_length"
        )
    if not model.isprintable():
        raise ValidationError(
            _("A model name cannot contain line breaks or control characters."), code="invalid"
        )
    return model


def clean_priority(value: int) -> int:
    if value is None or not MIN_PRIORITY <= value <= MAX_PRIORITY:
        raise ValidationError(
            _("Use a priority from %(min)d (tried first) to %(max)d.")
            % {"min": MIN_PRIORITY, "max": MAX_PRIORITY},
            code="range",
        )
    return value


def clean_weight(value: int) -> int:
    if value is None or not MIN_WEIGHT <= value <= MAX_WEIGHT:
        raise ValidationError(
            _("Use a weight from %(min)d to %(max)d.") % {"min": MIN_WEIGHT, "max": MAX_WEIGHT},
            code="range",
        )
    return value


def not_a_team_credential() -> ValidationError:
    return ValidationError(_("Choose one of this team's provider keys."), code="invalid_choice")


def resolve_credential(team: Team, value: Any) -> ProviderCredential:
    """The team's credential with this id, or a validation error (never another team's)."""
    if isinstance(value, ProviderCredential):
        value = value.pk
    try:
        pk = value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        raise not_a_team_credential() from None
    credential = team_credentials(team).filter(pk=pk).first()
    if credential is None:
        raise not_a_team_credential()
    return credential


def check_targets(team: Team, targets: Iterable[TargetSpec]) -> list[TargetSpec]:
    """The whole list: at least one, at most MAX_TARGETS, each the team's, none twice."""
    targets = list(targets)
    if not targets:
        raise ValidationError(
            _("Add at least one target: a provider key and a model."), code="required"
        )
    if len(targets) > MAX_TARGETS:
        raise ValidationError(
            _("At most %(max)d targets per alias.") % {"max": MAX_TARGETS}, code="max_length"
        )
    seen: set[tuple[Any, str]] = set()
    for target in targets:
        if target.credential.team_id != team.pk:
            raise not_a_team_credential()
        key = (target.credential.pk, target.upstream_model)
        if key in seen:
            raise ValidationError(
                _("“%(model)s” on “%(credential)s” is listed twice.")
                % {"model": target.upstream_model, "credential": target.credential.name},
                code="duplicate",
            )
        seen.add(key)
    return targets


# --- Forms --------------------------------------------------------------------


class CredentialChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: ProviderCredential) -> str:
        return f"{obj.name} · {obj.provider.name}"


class RouteForm(forms.Form):
    alias = forms.CharField(
        label=gettext_lazy("Model name"),
        max_length=MAX_ALIAS_LENGTH * 2,  # the rule gives the clear message
        strip=True,
        widget=forms.TextInput(
            attrs={"placeholder": "gpt-4o", "spellcheck": "false", "autocomplete": "off"}
        ),
        help_text=gettext_lazy(
            "The model name your application sends, e.g. gpt-4o. Requests for it go to "
            "the targets below."
        ),
    )
    description = forms.CharField(
        label=gettext_lazy("Description"),
        max_length=MAX_DESCRIPTION_LENGTH * 2,
        required=False,
        strip=True,
    )

    def __init__(self, *args: Any, team: Team, route: ModelRoute | None = None, **kwargs: Any):
        if route is not None:
            kwargs.setdefault("initial", {"alias": route.alias, "description": route.description})
        super().__init__(*args, **kwargs)
        self.team = team
        self.route = route

    def clean_alias(self) -> str:
        return clean_alias(self.team, self.cleaned_data["alias"], exclude=self.route)

    def clean_description(self) -> str:
        return clean_description(self.cleaned_data.get("description") or "")


class TargetForm(forms.Form):
    credential = CredentialChoiceField(
        label=gettext_lazy("Provider key"),
        queryset=ProviderCredential.objects.none(),
        empty_label=gettext_lazy("Choose a provider key…"),
        error_messages={
            "invalid_choice": gettext_lazy("Choose one of this team's provider keys."),
            "required": gettext_lazy("Choose a provider key."),
        },
    )
    upstream_model = forms.CharField(
        label=gettext_lazy("Upstream model"),
        max_length=MAX_MODEL_LENGTH * 2,
        required=False,  # the rule below gives the clear message
        strip=True,
        widget=forms.TextInput(
            attrs={
                "placeholder": "qwen-plus",
                "spellcheck": "false",
                "autocomplete": "off",
                "list": "route-models-all",
            }
        ),
    )
    priority = forms.IntegerField(label=gettext_lazy("Priority"), initial=0)
    weight = forms.IntegerField(label=gettext_lazy("Weight"), initial=1)

    def __init__(self, *args: Any, team: Team, default_priority: int = 0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.team = team
        field = self.fields["credential"]
        assert isinstance(field, CredentialChoiceField)
        field.queryset = team_credentials(team)
        self.fields["priority"].initial = default_priority
        self.fields["priority"].widget.attrs.update(min=MIN_PRIORITY, max=MAX_PRIORITY)
        self.fields["weight"].widget.attrs.update(min=MIN_WEIGHT, max=MAX_WEIGHT)

    def has_changed(self) -> bool:
        # A new row without a key and a model is blank, whatever its priority says.
        if self.is_bound and not (
            self["credential"].data or str(self["upstream_model"].data or "").strip()
        ):
            return False
        return super().has_changed()

    def clean_upstream_model(self) -> str:
        return clean_upstream_model(self.cleaned_data.get("upstream_model") or "")

    def clean_priority(self) -> int:
        return clean_priority(self.cleaned_data["priority"])

    def clean_weight(self) -> int:
        return clean_weight(self.cleaned_data["weight"])

    def spec(self) -> TargetSpec:
        data = self.cleaned_data
        return TargetSpec(
            credential=data["credential"],
            upstream_model=data["upstream_model"],
            priority=data["priority"],
            weight=data["weight"],
        )


class BaseTargetFormSet(forms.BaseFormSet):
    """The targets of one alias. Blank extra rows are ignored; rows ticked
    "remove" are dropped; at least one target must remain."""

    def __init__(self, *args: Any, team: Team, **kwargs: Any) -> None:
        self.team = team
        super().__init__(*args, **kwargs)

    def get_form_kwargs(self, index: int | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = super().get_form_kwargs(index)
        kwargs["team"] = self.team
        # A new row defaults to the next fallback: the first 0, then 1, 2...
        kwargs["default_priority"] = min(index or 0, MAX_PRIORITY)
        return kwargs

    def kept_forms(self) -> list[TargetForm]:
        # Existing targets always count; a blank new row does not.
        return [
            form
            for form in cast(list[TargetForm], self.forms)
            if (not form.empty_permitted or form.has_changed())
            and not (self.can_delete and form.cleaned_data.get("DELETE", False))
        ]

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        try:
            check_targets(self.team, [form.spec() for form in self.kept_forms()])
        except ValidationError as exc:
            raise ValidationError(exc.messages) from None

    def specs(self) -> list[TargetSpec]:
        return [form.spec() for form in self.kept_forms()]


def target_formset(
    team: Team,
    data: Any = None,
    *,
    route: ModelRoute | None = None,
    extra: int = 1,
) -> BaseTargetFormSet:
    """The targets formset of a new alias (``extra`` blank rows) or of ``route``."""
    initial = None
    if route is not None:
        initial = [
            {
                "credential": t.credential_id,
                "upstream_model": t.upstream_model,
                "priority": t.priority,
                "weight": t.weight,
            }
            for t in route.targets.all()
        ]
    formset_class = cast(
        type[BaseTargetFormSet],
        formset_factory(
            TargetForm,
            formset=BaseTargetFormSet,
            extra=extra,
            can_delete=True,
            max_num=MAX_TARGETS,
            validate_max=True,
            absolute_max=MAX_TARGETS,
        ),
    )
    return formset_class(data, initial=initial, prefix="targets", team=team)
