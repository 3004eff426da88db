"""The usage ledger becomes a table partitioned by day on PostgreSQL (billing/partitions.py).

PostgreSQL requires every unique constraint of a partitioned table, the primary key included,
to contain the partition key. So the ledger is unique on (request_id, created_at) instead of
request_id alone (created_at is when the usage event was written; a replay carries it
unchanged, and billing/ledger.py skips a request written twice at different times), on both
databases so they dedupe alike; and on PostgreSQL the
primary key is (id, created_at) while Django keeps treating ``id`` as the primary key (ids
still come from one sequence, so they stay unique).

PostgreSQL: the table is rebuilt as ``PARTITION BY RANGE (created_at)`` with the same columns,
indexes and constraints under the same names (read from the catalog, so Django's later
migrations still find them), a partition for every day the ledger already has rows in, today
and the next week, and a DEFAULT partition; the rows are copied (this migration takes time in
proportion to the ledger: plan for it on a large one) and the append-only trigger of
migration 0006 is created on the partitioned table, from which PostgreSQL clones it onto
every partition, present and future. SQLite: the table stays a plain one; the column change
rebuilds it, which drops its triggers, so they are made again (as in 0007 and 0010).
"""

import importlib
from datetime import UTC, datetime, timedelta

from django.db import migrations, models

LEDGERS = importlib.import_module("billing.migrations.0006_append_only_ledgers")

TABLE = "billing_usagerecord"
OLD = f"{TABLE}_unpartitioned"
AHEAD_DAYS = 7


def _day_partition(day):
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    end = start + timedelta(days=1)
    return (
        f'CREATE TABLE "{TABLE}_p{day:%Y%m%d}" PARTITION OF "{TABLE}" '
        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    )


def _postgresql(schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [TABLE])
        if cursor.fetchone()[0] == "p":
            return
        cursor.execute(
            "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = %s::regclass "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
            "WHERE c.conrelid = i.indrelid AND c.conindid = i.indexrelid) ORDER BY 1",
            [TABLE],
        )
        indexes = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('u', 'c', 'f') ORDER BY conname",
            [TABLE],
        )
        constraints = cursor.fetchall()
        cursor.execute(
            f"SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date FROM \"{TABLE}\""
        )
        today = datetime.now(UTC).date()
        days = {row[0] for row in cursor.fetchall()}
        days |= {today + timedelta(days=n) for n in range(AHEAD_DAYS + 1)}
        cursor.execute(f"SELECT coalesce(max(id), 0) FROM \"{TABLE}\"")
        last_id = cursor.fetchone()[0]

        cursor.execute(f'LOCK TABLE "{TABLE}" IN ACCESS EXCLUSIVE MODE')
        cursor.execute(f'ALTER TABLE "{TABLE}" RENAME TO "{OLD}"')
        cursor.execute(
            f'CREATE TABLE "{TABLE}" (LIKE "{OLD}" INCLUDING DEFAULTS INCLUDING STORAGE) '
            "PARTITION BY RANGE (created_at)"
        )
        # A plain sequence rather than an identity column: partitioned tables take identity
        # columns only from PostgreSQL 17.
        cursor.execute(f'CREATE SEQUENCE "{TABLE}_ids" AS bigint OWNED BY "{TABLE}".id')
        cursor.execute(f"SELECT setval('\"{TABLE}_ids\"', %s, %s)", [max(last_id, 1), last_id > 0])
        cursor.execute(f"ALTER TABLE \"{TABLE}\" ALTER id SET DEFAULT nextval('\"{TABLE}_ids\"')")
        cursor.execute(f'CREATE TABLE "{TABLE}_default" PARTITION OF "{TABLE}" DEFAULT')
        for day in sorted(days):
            cursor.execute(_day_partition(day))
        cursor.execute(f'INSERT INTO "{TABLE}" SELECT * FROM "{OLD}"')
        # Dropping the old table drops its trigger, identity sequence, indexes and
        # constraints, whose names the new table now takes.
        cursor.execute(f'DROP TABLE "{OLD}"')
        cursor.execute(f'ALTER SEQUENCE "{TABLE}_ids" RENAME TO "{TABLE}_id_seq"')
        cursor.execute(f'ALTER TABLE "{TABLE}" ADD CONSTRAINT "{TABLE}_pkey" PRIMARY KEY (id, created_at)')
        for name, definition in constraints:
            cursor.execute(f'ALTER TABLE "{TABLE}" ADD CONSTRAINT "{name}" {definition}')
        for definition in indexes:
            cursor.execute(definition)
        cursor.execute(
            f'CREATE TRIGGER billing_usagerecord_append_only BEFORE UPDATE OR DELETE ON "{TABLE}" '
            "FOR EACH ROW EXECUTE FUNCTION billing_usagerecord_append_only()"
        )


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _postgresql(schema_editor)
    elif vendor == "sqlite":
        for name in LEDGERS.SQLITE_TRIGGERS:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS billing_{name}", None)
        for statement in LEDGERS._sqlite(apps)[1:]:  # the permit table is still there
            schema_editor.execute(statement, None)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0010_usage_client_request_id"),
    ]

    operations = [
        migrations.AlterField(
            model_name="usagerecord",
            name="request_id",
            field=models.CharField(max_length=64),
        ),
        migrations.AddConstraint(
            model_name="usagerecord",
            constraint=models.UniqueConstraint(
                fields=("request_id", "created_at"), name="usage_request_once"
            ),
        ),
        # Irreversible: unique on request_id alone cannot be put back on a partitioned table.
        migrations.RunPython(forwards),
    ]
