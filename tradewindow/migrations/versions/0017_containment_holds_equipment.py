"""logistics: containment rows say whether transport equipment is among their children
(holds_equipment), with an index of the parents of only those rows

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-23 02:45:00.000000

Written by hand. Capture looks for the equipment inside everything a document names (a container
on a wagon, what a barge carries): one probe per named EPC, parcels included, and only a wagon's
or a barge's rows ever answer. Probed in the parent index of every row (every bag of parcels) a
document of 1,000 events read ~34,000 index pages; probed in an index of only the rows that hold
equipment, a few. The flag of existing rows is set from the equipment table; downgrade drops
the column and its index.
"""
import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    op.add_column('containment', sa.Column('holds_equipment', sa.Boolean(), nullable=False,
                                           server_default=sa.false()))
    if conn.dialect.name == 'postgresql':
        op.execute("UPDATE containment c SET holds_equipment = true "
                   "WHERE EXISTS (SELECT 1 FROM equipment e WHERE e.epc = ANY(c.children))")
    else:
        op.execute("UPDATE containment SET holds_equipment = 1 WHERE EXISTS (SELECT 1 FROM equipment e, "
                   "json_each(containment.children) j WHERE e.epc = j.value)")
    with op.batch_alter_table('containment') as batch:
        batch.alter_column('holds_equipment', existing_type=sa.Boolean(), server_default=None)
    op.create_index('ix_containment_equipment_parent', 'containment', ['parent_epc'], unique=False,
                    postgresql_where=sa.text('holds_equipment'), sqlite_where=sa.text('holds_equipment'))


def downgrade() -> None:
    op.drop_index('ix_containment_equipment_parent', table_name='containment')
    with op.batch_alter_table('containment') as batch:
        batch.drop_column('holds_equipment')
