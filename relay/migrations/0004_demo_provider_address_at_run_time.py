from django.db import migrations


def forget_demo_address(apps, schema_editor):  # type: ignore[no-untyped-def]
    """Databases migrated before the demo provider's address was read at run time hold
    the address the settings had then (``http://127.0.0.1:8001/v1`` for ``make run``).
    Forget it, and add the demo row where it was never seeded; it is offered only where
    BATON_FAKE_UPSTREAM_URL is set."""
    from relay.catalog_seed import DEMO_PROVIDER

    Provider = apps.get_model("relay", "Provider")
    Provider.objects.filter(is_demo=True).update(regions={})
    if not Provider.objects.filter(slug=DEMO_PROVIDER["slug"]).exists():
        last = Provider.objects.order_by("-sort_order").first()
        defaults = {key: value for key, value in DEMO_PROVIDER.items() if key != "slug"}
        Provider.objects.create(
            slug=DEMO_PROVIDER["slug"],
            default_region="default",
            sort_order=(last.sort_order + 10) if last else 0,
            **defaults,
        )


class Migration(migrations.Migration):
    dependencies = [("relay", "0003_route_target_unique")]
    operations = [migrations.RunPython(forget_demo_address, migrations.RunPython.noop)]
