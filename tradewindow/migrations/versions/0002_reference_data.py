"""Reference data: code lists and the Chinese working-day calendar 2024-2030.

The calendar is seeded from the `holidays` package; administrators amend it as data when the
State Council publishes a year's holiday notice.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from tradewindow.platform.calendar import chinese_calendar_entries
    from tradewindow.platform.codelists import builtin_entries
    from tradewindow.platform.tables import calendar_days, code_list_entries

    op.bulk_insert(code_list_entries, builtin_entries())
    op.bulk_insert(calendar_days, [
        {"day": day, "kind": kind, "name": name, "updated_by": "migration"}
        for day, kind, name in chinese_calendar_entries(range(2024, 2031))
    ])


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM calendar_days WHERE updated_by = 'migration'"))
    op.execute(sa.text("DELETE FROM code_list_entries"))
