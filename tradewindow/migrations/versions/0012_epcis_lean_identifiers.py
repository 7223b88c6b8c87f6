"""logistics: the EPCs of an event on its row, containment one row per aggregation (placeholder
claim; the data move follows)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-22 21:50:00.000000

Written by hand.
"""

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
