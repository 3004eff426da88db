"""Who serves the OpenAI Responses API natively, and where (relay/catalog_seed.py): OpenAI,
DeepSeek, DashScope, MiniMax and Volcengine Ark. Added to each installed catalog entry that
names no Responses URL yet; an operator's own entry stays."""

from typing import Any

from django.db import migrations


def add_responses(apps: Any, schema_editor: Any) -> None:
    from relay.catalog_seed import CATALOG

    Provider = apps.get_model("relay", "Provider")
    for entry in CATALOG:
        urls = (entry.get("dialects") or {}).get("responses")
        if not urls:
            continue
        provider = Provider.objects.filter(slug=entry["slug"]).first()
        if provider is None or (provider.dialects or {}).get("responses"):
            continue
        provider.dialects = {**(provider.dialects or {}), "responses": urls}
        provider.save(update_fields=["dialects"])


class Migration(migrations.Migration):
    dependencies = [("relay", "0006_catalog_2026")]

    operations = [migrations.RunPython(add_responses, migrations.RunPython.noop)]
