from django.db import migrations


def seed(apps, schema_editor):  # type: ignore[no-untyped-def]
    from relay.catalog_seed import seed as seed_catalog

    # The demo provider's address is not stored (it used to be baked in here from the
    # settings at migrate time); relay.models.demo_base_url reads it at run time.
    seed_catalog(apps.get_model("relay", "Provider"))


class Migration(migrations.Migration):
    dependencies = [("relay", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
