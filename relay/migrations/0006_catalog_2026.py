"""The 2026 catalog: the dialects each provider serves natively, and the models of the
current generation. Only fills what is missing: an operator's edits stay."""

from typing import Any

from django.db import migrations


def refresh(apps: Any, schema_editor: Any) -> None:
    from relay.catalog_seed import CATALOG

    Provider = apps.get_model("relay", "Provider")
    for entry in CATALOG:
        provider = Provider.objects.filter(slug=entry["slug"]).first()
        if provider is None:
            continue
        changed = False
        if entry.get("dialects") and not provider.dialects:
            provider.dialects = entry["dialects"]
            changed = True
        known = list(provider.known_models or [])
        missing = [m for m in entry.get("known_models", []) if m not in known]
        if missing:
            provider.known_models = known + missing
            changed = True
        if changed:
            provider.save(update_fields=["dialects", "known_models"])


class Migration(migrations.Migration):
    dependencies = [("relay", "0005_provider_dialects")]

    operations = [migrations.RunPython(refresh, migrations.RunPython.noop)]
