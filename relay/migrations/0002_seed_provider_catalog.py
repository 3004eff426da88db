from django.conf import settings
from django.db import migrations


def seed(apps, schema_editor):  # type: ignore[no-untyped-def]
    from relay.catalog_seed import seed as seed_catalog

    seed_catalog(apps.get_model("relay", "Provider"), demo_base_url=_demo_url())


def _demo_url() -> str:
    base = getattr(settings, "BATON_FAKE_UPSTREAM_URL", "")
    return f"{base.rstrip('/')}/v1" if base else ""


class Migration(migrations.Migration):
    dependencies = [("relay", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
