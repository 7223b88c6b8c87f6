"""ecommerce: the order, payment and waybill tables keyed by their own numbers, without the ULID
`id` column — nothing read it; its primary key index was one of the thirteen index entries a
parcel costs the bulk path (about a quarter of PostgreSQL's CPU per parcel stored by COPY, with
the unique constraint on the number doing the same job beside it)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-23 00:00:00.000000

Written by hand. The numbers were unique already, so the rows move as they are; on SQLite the
tables are rebuilt. Downgrade gives every row a fresh id.
"""
import sqlalchemy as sa
from alembic import op

from tradewindow.platform.ids import new_ids

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

DOCUMENTS = (('cbec_orders', 'order_no'), ('cbec_payments', 'payment_no'), ('cbec_waybills', 'waybill_no'))


def upgrade() -> None:
    for table, number in DOCUMENTS:
        with op.batch_alter_table(table, recreate='auto') as batch:
            batch.drop_constraint(f'uq_{table}_{number}', type_='unique')
            batch.drop_constraint(f'pk_{table}', type_='primary')
            batch.drop_column('id')
            batch.create_primary_key(f'pk_{table}', [number])


def downgrade() -> None:
    conn = op.get_bind()
    for table, number in DOCUMENTS:
        op.add_column(table, sa.Column('id', sa.String(length=26), nullable=True))
        numbers = conn.execute(sa.text(f'SELECT {number} FROM {table}')).scalars().all()
        if numbers:
            conn.execute(sa.text(f'UPDATE {table} SET id = :id WHERE {number} = :number'),
                         [{'id': i, 'number': n} for i, n in zip(new_ids(len(numbers)), numbers, strict=True)])
        with op.batch_alter_table(table, recreate='auto') as batch:
            batch.drop_constraint(f'pk_{table}', type_='primary')
            batch.alter_column('id', existing_type=sa.String(length=26), nullable=False)
            batch.create_primary_key(f'pk_{table}', ['id'])
            batch.create_unique_constraint(f'uq_{table}_{number}', [number])
