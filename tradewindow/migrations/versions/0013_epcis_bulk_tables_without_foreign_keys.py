"""logistics: EPCIS events and their links to equipment without foreign keys (placeholder claim)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-22 22:06:00.000000

Written by hand.
"""

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
