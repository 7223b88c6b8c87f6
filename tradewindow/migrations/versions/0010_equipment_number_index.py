"""logistics: the equipment index by number also holds the consignment, so a container's latest
consignment (its timeline) is one index probe however many trains the container has travelled on

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22 19:25:00.000000

Written by hand.
"""
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_equipment_number', table_name='equipment')
    op.create_index('ix_equipment_number', 'equipment', ['number', 'consignment_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_equipment_number', table_name='equipment')
    op.create_index('ix_equipment_number', 'equipment', ['number'], unique=False)
