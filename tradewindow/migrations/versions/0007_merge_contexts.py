"""Merge the contexts built side by side on 0005: bonded, e-commerce, logistics and titles.

Revision ID: 0007
Revises: b0006, e0006, l0006, t0006
"""

revision = "0007"
down_revision = ("b0006", "e0006", "l0006", "t0006")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
