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


def test_the_migrations_have_one_head():
    # Contexts may be built side by side on branches, but what lands is merged into one line.
    from alembic.script import ScriptDirectory

    from tradewindow.migrations import alembic_config

    assert len(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()) == 1
