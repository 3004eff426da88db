"""The relocation helper: move an application or a coding agent in one step.

The application keeps sending ``gpt-4o`` (Claude Code ``claude-sonnet-5-5``, Codex
``gpt-5.5``); the team points that name at a model of a provider it has a key for
(primary, then up to two fallbacks). This module knows which replacements a team can
choose from (its credentials x their provider's chat or embedding models), suggests
sensible ones (for an agent, targets that serve its dialect natively first), and applies a
whole plan in one transaction: every alias is created or updated (never duplicated), each
change audited. Which clients there are, their model names and the preferences are data
(``CLIENTS``, ``PREFERENCES``); the lines that point each client at Baton are on the result
page (``templates/relay/relocate_done.html``).
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
from relay.dialects import NATIVE, dialect_path
from relay.models import ModelRoute, ProviderCredential
from relay.route_forms import MAX_ALIAS_LENGTH, TargetSpec, clean_alias

CHAT = "chat"
EMBEDDING = "embedding"


@dataclass(frozen=True)
class Client:
    """A kind of client whose model names the helper moves: its preset names, the dialect it
    speaks (targets that serve it natively are suggested first) and, on the result page, the
    lines that point it at Baton (``templates/relay/relocate_done.html``)."""

    key: str
    presets: tuple[tuple[str, str], ...]  # (model name, CHAT or EMBEDDING)
    dialect: str = "chat"


OPENAI = "openai"
CLAUDE_CODE = "claude-code"
CODEX = "codex"

# Claude Code's model names, by the tier its settings name (ANTHROPIC_DEFAULT_<TIER>_MODEL),
# newest first: Claude Code 2.x sends the 5.5 names, earlier settings the 4.x ones. Its
# small, fast model (background work) is the Haiku tier.
CLAUDE_CODE_TIERS: dict[str, tuple[str, ...]] = {
    "sonnet": ("claude-sonnet-5-5", "claude-sonnet-4-5"),
    "opus": ("claude-opus-5-5", "claude-opus-4-1"),
    "haiku": ("claude-haiku-5-5", "claude-haiku-4-5"),
}

CLIENTS: tuple[Client, ...] = (
    # The OpenAI model names applications most often send.
    Client(
        OPENAI,
        (
            ("gpt-4o", CHAT),
            ("gpt-4o-mini", CHAT),
            ("gpt-4.1", CHAT),
            ("gpt-5", CHAT),
            ("gpt-5-mini", CHAT),
            ("o3", CHAT),
            ("o4-mini", CHAT),
            ("text-embedding-3-small", EMBEDDING),
            ("text-embedding-3-large", EMBEDDING),
        ),
    ),
    Client(
        CLAUDE_CODE,
        (
            ("claude-sonnet-5-5", CHAT),
            ("claude-opus-5-5", CHAT),
            ("claude-haiku-5-5", CHAT),
            ("claude-sonnet-4-5", CHAT),
            ("claude-opus-4-1", CHAT),
            ("claude-haiku-4-5", CHAT),
        ),
        dialect="messages",
    ),
    # The model a Codex config.toml names (Codex CLI 0.171's default is gpt-5.5).
    Client(CODEX, (("gpt-5.5", CHAT), ("gpt-5.3-codex", CHAT)), dialect="responses"),
)
PRESETS: tuple[tuple[str, str], ...] = tuple(p for c in CLIENTS for p in c.presets)
_CLIENT_OF = {name: client for client in CLIENTS for name, _kind in client.presets}

MAX_FALLBACKS = 2

# Replacements in order of preference, by what the model is used for: the 2026 generation
# of each provider first (relay/catalog_seed.py), then the older names as later fallbacks
# for catalogs an operator has not refreshed.
_FLAGSHIP = (
    "qwen3.5-plus",
    "glm-4.7",
    "deepseek-v4-flash",
    "kimi-k2.6",
    "MiniMax-M3",
    "qwen-plus",
    "glm-4.6",
    "deepseek-chat",
    "kimi-k2.5",
)
_TOP = (
    "qwen3-max",
    "glm-5",
    "deepseek-v4-pro",
    "kimi-k2.6",
    "MiniMax-M3",
    "qwen3.5-plus",
    "glm-4.7",
    "glm-4.6",
    "deepseek-chat",
    "qwen-plus",
)
_SMALL = (
    "qwen3.5-flash",
    "glm-4.5-flash",
    "deepseek-v4-flash",
    "glm-4.5-air",
    "MiniMax-M2.5",
    "qwen-flash",
    "deepseek-chat",
    "moonshot-v1-8k",
    "qwen-plus",
)
_REASONING = (
    "deepseek-v4-pro",
    "qwen3-max",
    "glm-5",
    "kimi-k2.6",
    "MiniMax-M3",
    "deepseek-reasoner",
    "glm-4.6",
)
_SMALL_REASONING = (
    "deepseek-v4-flash",
    "qwen3.5-flash",
    "glm-4.5-air",
    "deepseek-reasoner",
    "qwen-plus",
    "qwen-flash",
)
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
# Coding agents: the strongest agentic coding models, from providers that serve the agent's
# own dialect natively (DeepSeek V4, GLM, Kimi, Qwen and MiniMax all serve Messages).
_AGENT = (
    "deepseek-v4-pro",
    "glm-5",
    "kimi-k2.6",
    "qwen3.5-plus",
    "MiniMax-M3",
    "glm-4.7",
    "qwen3-coder-plus",
    "deepseek-v4-flash",
    "kimi-k2.5",
    "MiniMax-M2.7",
)
_AGENT_TOP = (
    "deepseek-v4-pro",
    "glm-5",
    "kimi-k2.6",
    "qwen3-max",
    "MiniMax-M3",
    "qwen3.5-plus",
    "glm-4.7",
    "kimi-k2.5",
)
_AGENT_FAST = (
    "deepseek-v4-flash",
    "glm-4.5-air",
    "qwen3.5-flash",
    "MiniMax-M2.5",
    "kimi-k2.5",
    "glm-4.5-flash",
    "qwen-flash",
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
    "claude-sonnet-5-5": _AGENT,
    "claude-sonnet-4-5": _AGENT,
    "claude-opus-5-5": _AGENT_TOP,
    "claude-opus-4-1": _AGENT_TOP,
    "claude-haiku-5-5": _AGENT_FAST,
    "claude-haiku-4-5": _AGENT_FAST,
    "gpt-5.5": _AGENT,
    "gpt-5.3-codex": _AGENT,
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


def client_of(alias: str) -> Client:
    """The client whose preset ``alias`` is; any other name is an application's (OpenAI)."""
    return _CLIENT_OF.get(alias, CLIENTS[0])


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
    dialect = client_of(alias).dialect
    # An agent's request reaches a target that serves its dialect as it is: those first.
    translated = int(dialect != "chat" and dialect_path(option.credential, dialect) != NATIVE)
    preferences = PREFERENCES.get(alias, ())
    if option.model in preferences:
        return (translated, 0, preferences.index(option.model))
    if option.model == alias and option.provider_slug != "openai":
        return (translated, 1, 0)  # the same model elsewhere, e.g. on Azure
    if option.provider_slug in PROVIDER_ORDER:
        return (translated, 2, PROVIDER_ORDER.index(option.provider_slug))
    if option.provider_slug != "openai":
        return (translated, 3, 0)
    return (translated, 4, 0 if option.model == alias else 1)


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


def clients_moved(result: Result) -> set[str]:
    """Which clients the saved names belong to (``OPENAI`` for any application's names)."""
    return {client_of(o.alias).key for o in result.outcomes}


def claude_code_models(aliases: Iterable[str]) -> list[tuple[str, str]]:
    """Claude Code's model settings for the names moved: each tier names the newest of its
    names that was moved, and a tier without one names the main model, so that every
    request Claude Code makes (its small, fast model's included) goes to an alias of the
    team, whatever names a later Claude Code would send by default. [] when no Claude Code
    name was moved."""
    moved = set(aliases)
    tier = {t: next((n for n in names if n in moved), "") for t, names in CLAUDE_CODE_TIERS.items()}
    main = tier["sonnet"] or tier["opus"] or tier["haiku"]
    if not main:
        return []
    return [
        ("ANTHROPIC_MODEL", main),
        ("ANTHROPIC_DEFAULT_SONNET_MODEL", tier["sonnet"] or main),
        ("ANTHROPIC_DEFAULT_OPUS_MODEL", tier["opus"] or main),
        ("ANTHROPIC_DEFAULT_HAIKU_MODEL", tier["haiku"] or main),
        ("ANTHROPIC_SMALL_FAST_MODEL", tier["haiku"] or main),
    ]


def codex_model(aliases: Iterable[str]) -> str:
    """The model a Codex config.toml should name: the first Codex name moved, or ""."""
    moved = set(aliases)
    codex = next(c for c in CLIENTS if c.key == CODEX)
    return next((name for name, _kind in codex.presets if name in moved), "")


# --- The form ------------------------------------------------------------------


@dataclass
class Row:
    """One model name of the application, as a row of the relocation form."""

    key: str
    alias: str  # "" for a blank row where the user types a name
    kind: str | None  # None: any option (chat and embeddings)
    preset: bool = False
    route: ModelRoute | None = None
    client: str = OPENAI  # whose preset name it is

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
            Row(
                f"p{i}",
                name,
                kind,
                preset=True,
                route=self.routes.get(name),
                client=client_of(name).key,
            )
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
        """The rows grouped for the page: OpenAI's chat and embedding names, Claude Code's,
        Codex's, other aliases, new names."""
        items = self.row_fields()

        def presets(client: str, kind: str | None = None) -> list[dict[str, Any]]:
            return [
                i
                for i in items
                if i["row"].preset
                and i["row"].client == client
                and (kind is None or i["row"].kind == kind)
            ]

        groups = [
            ("chat", _("OpenAI chat models"), "", presets(OPENAI, CHAT)),
            ("embedding", _("OpenAI embedding models"), "", presets(OPENAI, EMBEDDING)),
            (
                CLAUDE_CODE,
                _("Claude Code"),
                _(
                    "The names Claude Code sends, its small, fast model for background work "
                    "included. Suggestions prefer providers that serve Anthropic Messages "
                    "natively, so its requests reach them as they are."
                ),
                presets(CLAUDE_CODE),
            ),
            (
                CODEX,
                _("Codex"),
                _(
                    "The model your Codex config.toml names. Suggestions prefer providers that "
                    "serve the Responses API natively."
                ),
                presets(CODEX),
            ),
            (
                "existing",
                _("Other aliases of this team"),
                "",
                [i for i in items if not i["row"].preset and not i["row"].custom],
            ),
            (
                "custom",
                _("Other model names your application sends"),
                "",
                [i for i in items if i["row"].custom],
            ),
        ]
        return [
            {"key": k, "title": t, "sub": sub, "items": rows} for k, t, sub, rows in groups if rows
        ]

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
