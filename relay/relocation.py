"""The relocation helper: move an application off OpenAI model names in one step.

The application keeps sending ``gpt-4o``; the team points that name at a
model of a provider it has a key for (primary, then up to two fallbacks).
This module knows which replacements a team can choose from (its
credentials x their provider's chat or embedding models), suggests sensible
ones, and applies a whole plan in one transaction: every alias is created or
updated (never duplicated), each change audited.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import apikeys
from accounts.apikey_rules import clean_name as clean_api_key_name
from accounts.models import Membership, Team
from relay import routes
from relay.models import ModelRoute, ProviderCredential
from relay.route_forms import MAX_ALIAS_LENGTH, TargetSpec, clean_alias

CHAT = "chat"
EMBEDDING = "embedding"

# The OpenAI model names applications most often send.
PRESETS: tuple[tuple[str, str], ...] = (
    ("gpt-4o", CHAT),
    ("gpt-4o-mini", CHAT),
    ("gpt-4.1", CHAT),
    ("gpt-5", CHAT),
    ("gpt-5-mini", CHAT),
    ("o3", CHAT),
    ("o4-mini", CHAT),
    ("text-embedding-3-small", EMBEDDING),
    ("text-embedding-3-large", EMBEDDING),
)

MAX_FALLBACKS = 2

# Replacements in order of preference, by what the OpenAI model is used for.
_FLAGSHIP = ("qwen-plus", "glm-4.6", "deepseek-chat", "deepseek-v4-flash", "kimi-k2.5", "kimi-k2.6")
_TOP = ("qwen3-max", "glm-4.6", "deepseek-v4-pro", "kimi-k2.6", "deepseek-chat", "qwen-plus")
_SMALL = (
    "qwen-flash",
    "glm-4.5-flash",
    "glm-4.5-air",
    "deepseek-v4-flash",
    "deepseek-chat",
    "moonshot-v1-8k",
    "qwen-plus",
)
_REASONING = ("deepseek-reasoner", "qwen3-max", "glm-4.6", "kimi-k2.6", "deepseek-v4-pro")
_SMALL_REASONING = ("deepseek-reasoner", "qwen-plus", "glm-4.5-air", "qwen-flash")
_EMBEDDINGS = (
    "text-embedding-v4",
    "embedding-3",
    "BAAI/bge-m3",
    "text-embedding-v3",
    "gemini-embedding-001",
    "embedding-2",
    "bge-large-zh",
    "embedding-v1",
)
PREFERENCES: dict[str, tuple[str, ...]] = {
    "gpt-4o": _FLAGSHIP,
    "gpt-4.1": _TOP,
    "gpt-5": _TOP,
    "gpt-4o-mini": _SMALL,
    "gpt-5-mini": _SMALL,
    "o3": _REASONING,
    "o4-mini": _SMALL_REASONING,
    "text-embedding-3-small": _EMBEDDINGS,
    "text-embedding-3-large": _EMBEDDINGS,
}
# After the named models: providers in this order, OpenAI itself last.
PROVIDER_ORDER = (
    "qwen",
    "zhipu",
    "deepseek",
    "moonshot",
    "minimax",
    "ark",
    "qianfan",
    "hunyuan",
    "siliconflow",
    "stepfun",
    "gemini",
    "anthropic",
    "azure",
)


def kind_of(model: str) -> str:
    """Whether an application uses this model name for chat or for embeddings."""
    preset = dict(PRESETS).get(model)
    if preset:
        return preset
    return EMBEDDING if "embed" in model.lower() else CHAT


@dataclass(frozen=True)
class Option:
    """One replacement the team can choose: a credential and one of its models."""

    credential: ProviderCredential
    model: str
    kind: str

    @property
    def value(self) -> str:
        # A UUID has no colon, so the first one separates it from the model.
        return f"{self.credential.pk}:{self.model}"

    @property
    def label(self) -> str:
        return f"{self.model} · {self.credential.name}"

    @property
    def provider_slug(self) -> str:
        return self.credential.provider_id


def usable_credentials(team: Team) -> list[ProviderCredential]:
    """The team's enabled credentials, in the order they were added."""
    return list(
        ProviderCredential.objects.filter(team=team, enabled=True)
        .select_related("provider")
        .order_by("created_at", "name")
    )


def options_for(credentials: Iterable[ProviderCredential]) -> list[Option]:
    options: list[Option] = []
    for credential in credentials:
        provider = credential.provider
        for model in provider.known_models or []:
            options.append(Option(credential, str(model), CHAT))
        for model in provider.embedding_models or []:
            options.append(Option(credential, str(model), EMBEDDING))
    return options


def _rank(alias: str, option: Option) -> tuple[int, int, int]:
    preferences = PREFERENCES.get(alias, ())
    if option.model in preferences:
        return (0, preferences.index(option.model), 0)
    if option.model == alias and option.provider_slug != "openai":
        return (1, 0, 0)  # the same model elsewhere, e.g. on Azure
    if option.provider_slug in PROVIDER_ORDER:
        return (2, PROVIDER_ORDER.index(option.provider_slug), 0)
    if option.provider_slug != "openai":
        return (3, 0, 0)
    return (4, 0 if option.model == alias else 1, 0)


def suggest(alias: str, options: Sequence[Option]) -> list[Option]:
    """A primary and up to two fallbacks for ``alias``, best first.

    Fallbacks prefer a different provider key than the ones already chosen:
    when one provider is down, a fallback on the same key is down too.
    """
    kind = kind_of(alias)
    candidates = sorted(
        (o for o in options if o.kind == kind), key=lambda o: _rank(alias, o)
    )  # sorted() is stable: equal ranks keep the credentials' order
    chosen: list[Option] = []
    for allow_same_credential in (False, True):
        for option in candidates:
            if len(chosen) >= MAX_FALLBACKS + 1:
                return chosen
            if option in chosen:
                continue
            if not allow_same_credential and any(
                c.credential.pk == option.credential.pk for c in chosen
            ):
                continue
            chosen.append(option)
    return chosen


@dataclass
class PlanItem:
    alias: str
    targets: list[Option] = field(default_factory=list)  # primary first

    def specs(self) -> list[TargetSpec]:
        return [
            TargetSpec(credential=o.credential, upstream_model=o.model, priority=i, weight=1)
            for i, o in enumerate(self.targets)
        ]


@dataclass
class Outcome:
    alias: str
    status: str  # "created", "updated" or "unchanged"
    route: ModelRoute
    targets: list[Option]

    @property
    def created(self) -> bool:
        return self.status == "created"


@dataclass
class Result:
    outcomes: list[Outcome]
    issued_key: apikeys.IssuedApiKey | None = None


def apply(
    actor: Membership,
    plan: Sequence[PlanItem],
    *,
    issue_key_name: str = "",
    request: HttpRequest | None = None,
) -> Result:
    """Create or update every alias of the plan, all or nothing.

    Priorities are 0 for the primary, then 1 and 2 for the fallbacks; the
    chosen targets replace the alias's current ones. Optionally issues the
    API key the application will use, in the same transaction.
    """
    routes.check_can_manage(actor)
    team = actor.team
    outcomes: list[Outcome] = []
    with transaction.atomic():
        existing = {
            r.alias: r
            for r in ModelRoute.objects.select_for_update().filter(
                team=team, alias__in=[item.alias for item in plan]
            )
        }
        for item in plan:
            route = existing.get(item.alias)
            if route is None:
                route = routes.create_route(
                    actor, alias=item.alias, targets=item.specs(), request=request, via="relocate"
                )
                outcomes.append(Outcome(item.alias, "created", route, item.targets))
            else:
                before = routes.describe_targets(route)
                routes.update_route(
                    actor, route, targets=item.specs(), request=request, via="relocate"
                )
                changed = routes.describe_targets(route) != before
                status = "updated" if changed else "unchanged"
                outcomes.append(Outcome(item.alias, status, route, item.targets))
        issued = None
        if issue_key_name:
            issued = apikeys.create_api_key(actor, name=issue_key_name, request=request)
    return Result(outcomes=outcomes, issued_key=issued)


# --- The form ------------------------------------------------------------------


@dataclass
class Row:
    """One model name of the application, as a row of the relocation form."""

    key: str
    alias: str  # "" for a blank row where the user types a name
    kind: str | None  # None: any option (chat and embeddings)
    preset: bool = False
    route: ModelRoute | None = None

    @property
    def custom(self) -> bool:
        return not self.alias


CUSTOM_ROWS = 3
SLOTS = ("primary", "fallback1", "fallback2")


class RelocationForm(forms.Form):
    """Tick or type the model names the application uses; pick where each goes.

    Choices are built from the team's own credentials, so a posted value can
    only ever name one of them.
    """

    issue_key = forms.BooleanField(
        label=gettext_lazy("Create a new API key for this application"),
        required=False,
    )
    key_name = forms.CharField(
        label=gettext_lazy("API key name"),
        max_length=200,
        required=False,
        initial=gettext_lazy("Relocated application"),
    )

    def __init__(
        self,
        *args: Any,
        team: Team,
        credentials: Sequence[ProviderCredential],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.team = team
        existing = list(
            ModelRoute.objects.filter(team=team).prefetch_related("targets__credential__provider")
        )
        self.routes = {r.alias: r for r in existing}
        options = options_for(credentials)
        known = {(o.credential.pk, o.model) for o in options}
        # The current targets of existing aliases stay choosable even when the
        # catalog does not list their model (or their key is disabled).
        for route in existing:
            for target in route.targets.all():
                if (target.credential_id, target.upstream_model) not in known:
                    known.add((target.credential_id, target.upstream_model))
                    options.append(
                        Option(target.credential, target.upstream_model, kind_of(route.alias))
                    )
        self.options = options
        self.option_by_value = {o.value: o for o in options}

        preset_names = [name for name, _kind in PRESETS]
        rows = [
            Row(f"p{i}", name, kind, preset=True, route=self.routes.get(name))
            for i, (name, kind) in enumerate(PRESETS)
        ]
        rows += [
            Row(f"e{i}", route.alias, None, route=route)
            for i, route in enumerate(r for r in existing if r.alias not in preset_names)
        ]
        rows += [Row(f"c{i}", "", None) for i in range(CUSTOM_ROWS)]
        self.rows = rows
        for row in rows:
            self._add_row_fields(row)

    def _choices(self, kind: str | None) -> list[Any]:
        """Choices grouped by provider key. A choice names its model alone when no other
        key offers that model (the group says which key it is), so that a closed select
        has room for the whole name; otherwise it names the key too."""
        options = self.options_of(kind)
        offered_by = Counter(o.model for o in options)
        groups: dict[Any, tuple[str, list[tuple[str, str]]]] = {}
        for option in options:
            credential = option.credential
            label = f"{credential.name} · {credential.provider.name}"
            text = option.model if offered_by[option.model] == 1 else option.label
            groups.setdefault(credential.pk, (label, []))[1].append((option.value, text))
        return [("", _("— none —")), *groups.values()]

    def _initial_targets(self, row: Row) -> list[str]:
        if row.route is not None:
            by_key = {(o.credential.pk, o.model): o.value for o in self.options}
            values = [
                by_key.get((t.credential_id, t.upstream_model), "")
                for t in sorted(row.route.targets.all(), key=lambda t: (t.priority, -t.weight))
            ]
            return [v for v in values if v][: len(SLOTS)]
        if row.custom:
            return []
        return [o.value for o in suggest(row.alias, self.options_of(row.kind))]

    def options_of(self, kind: str | None) -> list[Option]:
        return [o for o in self.options if kind is None or o.kind == kind]

    def _add_row_fields(self, row: Row) -> None:
        if row.custom:
            self.fields[f"{row.key}-alias"] = forms.CharField(
                label=_("Model name"),
                required=False,
                max_length=MAX_ALIAS_LENGTH * 2,
                widget=forms.TextInput(
                    attrs={"placeholder": "gpt-3.5-turbo", "spellcheck": "false"}
                ),
            )
        else:
            self.fields[f"{row.key}-use"] = forms.BooleanField(
                label=row.alias, required=False, initial=row.route is not None
            )
        initial = self._initial_targets(row)
        choices = self._choices(row.kind)
        labels = (_("Primary"), _("First fallback"), _("Second fallback"))
        for index, (slot, label) in enumerate(zip(SLOTS, labels, strict=True)):
            self.fields[f"{row.key}-{slot}"] = forms.ChoiceField(
                label=label,
                required=False,
                choices=choices,
                initial=initial[index] if index < len(initial) else "",
                error_messages={
                    "invalid_choice": _("Choose one of the models of this team's provider keys.")
                },
            )

    def row_fields(self) -> list[dict[str, Any]]:
        """The rows with their bound fields, for the template."""
        return [
            {
                "row": row,
                "use": self[f"{row.key}-use"] if not row.custom else None,
                "alias": self[f"{row.key}-alias"] if row.custom else None,
                "slots": [self[f"{row.key}-{slot}"] for slot in SLOTS],
            }
            for row in self.rows
        ]

    def sections(self) -> list[dict[str, Any]]:
        """The rows grouped for the page: chat presets, embeddings, other aliases, new names."""
        items = self.row_fields()
        groups = [
            (
                "chat",
                _("Chat models"),
                [i for i in items if i["row"].preset and i["row"].kind == CHAT],
            ),
            (
                "embedding",
                _("Embedding models"),
                [i for i in items if i["row"].preset and i["row"].kind == EMBEDDING],
            ),
            (
                "existing",
                _("Other aliases of this team"),
                [i for i in items if not i["row"].preset and not i["row"].custom],
            ),
            (
                "custom",
                _("Other model names your application sends"),
                [i for i in items if i["row"].custom],
            ),
        ]
        return [{"key": k, "title": t, "items": rows} for k, t, rows in groups if rows]

    def clean_key_name(self) -> str:
        return (self.cleaned_data.get("key_name") or "").strip()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        plan: list[PlanItem] = []
        seen: set[str] = set()
        for row in self.rows:
            if row.custom:
                raw = (data.get(f"{row.key}-alias") or "").strip()
                if not raw:
                    continue
                alias_field = f"{row.key}-alias"
                try:
                    alias = clean_alias(self.team, raw, exclude=self.routes.get(raw))
                except ValidationError as exc:
                    self.add_error(alias_field, exc)
                    continue
            else:
                if not data.get(f"{row.key}-use"):
                    continue
                alias, alias_field = row.alias, f"{row.key}-use"
            if alias in seen:
                self.add_error(alias_field, _("“%(alias)s” is listed twice.") % {"alias": alias})
                continue
            seen.add(alias)
            targets: list[Option] = []
            for slot in SLOTS:
                value = data.get(f"{row.key}-{slot}") or ""
                if not value:
                    continue
                option = self.option_by_value.get(value)
                if option is None:  # not reachable through ChoiceField; never trust it anyway
                    self.add_error(f"{row.key}-{slot}", _("Choose a model from the list."))
                elif option in targets:
                    self.add_error(
                        f"{row.key}-{slot}", _("This model is already a target of this name.")
                    )
                else:
                    targets.append(option)
            if not data.get(f"{row.key}-primary"):
                self.add_error(
                    f"{row.key}-primary",
                    _("Choose where requests for “%(alias)s” go.") % {"alias": alias},
                )
            if targets:
                plan.append(PlanItem(alias=alias, targets=targets))
        if not seen and not self.errors:
            raise ValidationError(
                _("Tick or type at least one model name your application uses."),
                code="required",
            )
        if data.get("issue_key"):
            try:
                data["key_name"] = clean_api_key_name(self.team, data.get("key_name") or "")
            except ValidationError as exc:
                self.add_error("key_name", exc)
        self.plan = plan
        return data
