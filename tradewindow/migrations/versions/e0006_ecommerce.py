"""ecommerce: cross-border e-commerce orders, payments, waybills, parcels, buyer years

Revision ID: e0006
Revises: 0005
Create Date: 2026-11-23 12:00:00.000000

Written by hand as a branch from 0005 (contexts are built side by side; a later revision merges
the heads).
"""
import sqlalchemy as sa
from alembic import op

import tradewindow.platform.db

revision = 'e0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def _document(name: str, number: str, extra: list, unique: tuple[str, ...]) -> None:
    op.create_table(name,
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column(number, sa.String(length=64), nullable=False),
    *extra,
    sa.Column('sender_id', sa.String(length=26), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('body', sa.JSON(none_as_null=True), nullable=False),
    sa.Column('received_at', tradewindow.platform.db.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f(f'pk_{name}')),
    *[sa.UniqueConstraint(column, name=op.f(f'uq_{name}_{column}')) for column in unique],
    )


def upgrade() -> None:
    _document('cbec_orders', 'order_no', [
        sa.Column('buyer_id_number', sa.String(length=32), nullable=False),
        sa.Column('ordered_at', tradewindow.platform.db.UtcDateTime(timezone=True), nullable=False)],
        ('order_no',))
    op.create_index('ix_cbec_orders_buyer', 'cbec_orders', ['buyer_id_number', 'ordered_at'], unique=False)
    _document('cbec_payments', 'payment_no', [sa.Column('order_no', sa.String(length=64), nullable=False)],
              ('payment_no', 'order_no'))
    _document('cbec_waybills', 'waybill_no', [sa.Column('order_no', sa.String(length=64), nullable=False)],
              ('waybill_no', 'order_no'))
    op.create_table('cbec_parcels',
    sa.Column('buyer_id_number', sa.String(length=32), nullable=False),
    sa.Column('order_no', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('waybill_no', sa.String(length=64), nullable=False),
    sa.Column('platform_id', sa.String(length=26), nullable=True),
    sa.Column('payment_sender_id', sa.String(length=26), nullable=True),
    sa.Column('logistics_sender_id', sa.String(length=26), nullable=True),
    sa.Column('ordered_at', tradewindow.platform.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('decision', sa.String(length=10), nullable=False),
    sa.Column('reasons', sa.JSON(none_as_null=True), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('customs_value_fen', sa.BigInteger(), nullable=False),
    sa.Column('duty_fen', sa.BigInteger(), nullable=False),
    sa.Column('consumption_tax_fen', sa.BigInteger(), nullable=False),
    sa.Column('vat_fen', sa.BigInteger(), nullable=False),
    sa.Column('total_tax_fen', sa.BigInteger(), nullable=False),
    sa.Column('counted_fen', sa.BigInteger(), nullable=False),
    sa.Column('year_total_after_fen', sa.BigInteger(), nullable=False),
    sa.Column('decided_at', tradewindow.platform.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('cancelled_at', tradewindow.platform.db.UtcDateTime(timezone=True), nullable=True),
    sa.Column('cancel_reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('buyer_id_number', 'order_no', name=op.f('pk_cbec_parcels'))
    )
    op.create_index('ix_cbec_parcels_order_no', 'cbec_parcels', ['order_no'], unique=False)
    op.create_index('ix_cbec_parcels_decision', 'cbec_parcels', ['decision', 'decided_at'], unique=False)
    op.create_index('ix_cbec_parcels_platform', 'cbec_parcels', ['platform_id', 'decided_at'], unique=False)
    op.create_table('cbec_buyer_years',
    sa.Column('buyer_id_number', sa.String(length=32), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('total_fen', sa.BigInteger(), nullable=False),
    sa.Column('parcels', sa.Integer(), nullable=False),
    sa.Column('updated_at', tradewindow.platform.db.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('buyer_id_number', 'year', name=op.f('pk_cbec_buyer_years'))
    )


def downgrade() -> None:
    op.drop_table('cbec_buyer_years')
    op.drop_index('ix_cbec_parcels_platform', table_name='cbec_parcels')
    op.drop_index('ix_cbec_parcels_decision', table_name='cbec_parcels')
    op.drop_index('ix_cbec_parcels_order_no', table_name='cbec_parcels')
    op.drop_table('cbec_parcels')
    op.drop_table('cbec_waybills')
    op.drop_table('cbec_payments')
    op.drop_index('ix_cbec_orders_buyer', table_name='cbec_orders')
    op.drop_table('cbec_orders')
