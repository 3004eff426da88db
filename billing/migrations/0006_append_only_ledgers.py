"""The credit ledger and the usage ledger are append-only in the database, not only in the
model: QuerySet.update()/.delete(), raw SQL and cascades (deleting a team) bypass
CreditEntry.save()/delete(), so a trigger refuses them, on PostgreSQL and on SQLite (the
embedded default) alike, with an IntegrityError whose message says "append-only".

billing_creditentry: rows are never changed or deleted. The one change allowed is the
author's foreign key becoming NULL when that user is deleted (on_delete=SET_NULL).

billing_usagerecord: rows are never changed, except the ledger's own two steps, each once:
pricing a row stored without a cost (billing.usage.price_records: cost, currency, price,
exchange_rate, markup, unpriced, while cost is NULL) and linking a row to the credit entry that
debits it (charge_usage: credit_entry, while NULL). Rows are deleted only by retention
(billing.ledger.prune), which marks its transaction (billing.ledger.pruning: SET LOCAL
baton.prune_usage on PostgreSQL, a row in billing_usage_prune_permit on SQLite, which has no
session variables), and even then only rows whose money is in the credit ledger (cost 0 or
debited). So deleting a team with a ledger is refused.

TRUNCATE is not guarded (it fires no row trigger): it is an owner's operation, which the test
suite uses to empty tables. SQLite note: Django rebuilds a SQLite table for many schema
changes, which drops its triggers; a later migration that alters these tables must create them
again (tests/metering/test_append_only.py runs the checks on SQLite after every migration).
"""

from django.db import migrations

MESSAGE = {
    "creditentry": "billing_creditentry is append-only: add a correcting entry instead",
    "usagerecord": "billing_usagerecord is append-only: rows leave only through retention",
}
PRICING = ("cost", "currency", "price_id", "exchange_rate", "markup", "unpriced")
STEPS = ", ".join(f"'{c}'" for c in (*PRICING, "credit_entry_id"))
NEW_PRICING = ", ".join(f"NEW.{c}" for c in PRICING)
OLD_PRICING = ", ".join(f"OLD.{c}" for c in PRICING)

POSTGRESQL = f"""
CREATE FUNCTION billing_creditentry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.created_by_id IS NULL
       AND to_jsonb(NEW) - 'created_by_id' = to_jsonb(OLD) - 'created_by_id' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '{MESSAGE["creditentry"]} (% refused)', TG_OP
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER billing_creditentry_append_only BEFORE UPDATE OR DELETE ON billing_creditentry
    FOR EACH ROW EXECUTE FUNCTION billing_creditentry_append_only();

CREATE FUNCTION billing_usagerecord_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    steps CONSTANT text[] := ARRAY[{STEPS}];
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF current_setting('baton.prune_usage', true) = 'on'
           AND (OLD.cost = 0 OR OLD.credit_entry_id IS NOT NULL) THEN
            RETURN OLD;
        END IF;
    ELSIF to_jsonb(NEW) - steps = to_jsonb(OLD) - steps
          AND (OLD.cost IS NULL
               OR ({NEW_PRICING}) IS NOT DISTINCT FROM ({OLD_PRICING}))
          AND (OLD.credit_entry_id IS NULL
               OR NEW.credit_entry_id IS NOT DISTINCT FROM OLD.credit_entry_id) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '{MESSAGE["usagerecord"]} (% refused)', TG_OP
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER billing_usagerecord_append_only BEFORE UPDATE OR DELETE ON billing_usagerecord
    FOR EACH ROW EXECUTE FUNCTION billing_usagerecord_append_only();
"""

POSTGRESQL_REVERSE = """
DROP TRIGGER IF EXISTS billing_usagerecord_append_only ON billing_usagerecord;
DROP FUNCTION IF EXISTS billing_usagerecord_append_only();
DROP TRIGGER IF EXISTS billing_creditentry_append_only ON billing_creditentry;
DROP FUNCTION IF EXISTS billing_creditentry_append_only();
"""

SQLITE_TRIGGERS = (
    "creditentry_no_update",
    "creditentry_no_delete",
    "usagerecord_no_update",
    "usagerecord_no_delete",
)


def _unchanged(columns):
    return " AND ".join(f'NEW."{c}" IS OLD."{c}"' for c in columns)


def _columns(apps, name):
    return [f.column for f in apps.get_model("billing", name)._meta.concrete_fields]


def _refuse(table):
    return f"BEGIN SELECT RAISE(ABORT, '{MESSAGE[table]}'); END"


def _sqlite(apps):
    """SQLite triggers name every column (it has no row-to-JSON): the columns as of this migration."""
    credit = _columns(apps, "CreditEntry")
    usage = _columns(apps, "UsageRecord")
    fixed = [c for c in usage if c not in (*PRICING, "credit_entry_id")]
    return [
        "CREATE TABLE billing_usage_prune_permit (granted integer NOT NULL)",
        f"""CREATE TRIGGER billing_creditentry_no_update BEFORE UPDATE ON billing_creditentry
            WHEN NOT (NEW.created_by_id IS NULL
                      AND {_unchanged(c for c in credit if c != "created_by_id")})
            {_refuse("creditentry")}""",
        f"""CREATE TRIGGER billing_creditentry_no_delete BEFORE DELETE ON billing_creditentry
            {_refuse("creditentry")}""",
        f"""CREATE TRIGGER billing_usagerecord_no_update BEFORE UPDATE ON billing_usagerecord
            WHEN NOT ({_unchanged(fixed)}
                      AND (OLD.cost IS NULL OR ({_unchanged(PRICING)}))
                      AND (OLD.credit_entry_id IS NULL
                           OR NEW.credit_entry_id IS OLD.credit_entry_id))
            {_refuse("usagerecord")}""",
        f"""CREATE TRIGGER billing_usagerecord_no_delete BEFORE DELETE ON billing_usagerecord
            WHEN NOT (EXISTS (SELECT 1 FROM billing_usage_prune_permit)
                      AND (OLD.cost = 0 OR OLD.credit_entry_id IS NOT NULL))
            {_refuse("usagerecord")}""",
    ]


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRESQL, None)
    elif vendor == "sqlite":
        for statement in _sqlite(apps):
            schema_editor.execute(statement, None)
    else:
        raise NotImplementedError(f"append-only ledgers on {vendor}")


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRESQL_REVERSE, None)
    elif vendor == "sqlite":
        for name in SQLITE_TRIGGERS:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS billing_{name}", None)
        schema_editor.execute("DROP TABLE IF EXISTS billing_usage_prune_permit", None)


class Migration(migrations.Migration):
    dependencies = [("billing", "0005_demo_prices")]

    operations = [migrations.RunPython(forwards, backwards)]
