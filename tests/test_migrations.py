"""The migrations build exactly the schema the code's tables describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tradewindow.migrations import all_tables_metadata


def test_the_migrated_schema_matches_the_tables_in_the_code(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, all_tables_metadata())
    assert differences == []
