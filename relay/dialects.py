"""How a request in a client's dialect reaches a target, as the control plane shows it.

The relay decides per request (``gateway.routing.adapter_for``): a Messages or Responses
request goes to a target natively when the target's upstream serves that dialect, else it is
translated through Chat Completions. What an upstream serves natively is the credential's
``ProviderCredential.native_dialects()`` (the catalog's URLs for its region, or what a custom
base URL declares), so the pages read the same answer from the same place. A dialect the
catalog gains later (``Provider.dialects``) shows up here without a code change.
"""

from __future__ import annotations

from collections.abc import Iterable

from relay.models import ProviderCredential

NATIVE = "native"
TRANSLATED = "translated"
PATHS = (NATIVE, TRANSLATED)

# Dialects every target is shown for, native or not: Baton serves Messages to any target.
ALWAYS_SHOWN = ("messages",)

# Dialects a custom base URL may declare (the credential form's fields), in form order.
DECLARABLE = ("messages", "responses")

# Product names, not translated.
LABELS = {"messages": "Messages", "responses": "Responses"}


def dialect_path(credential: ProviderCredential, dialect: str) -> str:
    """``"native"`` when a ``dialect`` request goes to this credential's upstream as it is
    (only the model and the key replaced), else ``"translated"`` (through Chat Completions)."""
    return NATIVE if dialect in credential.native_dialects() else TRANSLATED


def target_paths(
    credential: ProviderCredential, upstream_model: str, shown: Iterable[str]
) -> dict[str, str]:
    """{dialect: path} of a route target for the dialects shown; {} for an embedding model
    of the catalog, which only the embeddings endpoint reaches."""
    if upstream_model in (credential.provider.embedding_models or []):
        return {}
    return {dialect: dialect_path(credential, dialect) for dialect in shown}


def shown_dialects(credentials: Iterable[ProviderCredential]) -> list[str]:
    """The dialects a route page reports for targets among these credentials: Messages,
    then every other dialect one of them serves natively besides chat."""
    natives = {dialect for c in credentials for dialect in c.native_dialects()}
    return [*ALWAYS_SHOWN, *sorted(natives - set(ALWAYS_SHOWN))]


def label(dialect: str) -> str:
    return LABELS.get(dialect, dialect.capitalize())
