"""bonded: zone-to-zone transfers (counterpart book and request, lots carved from another lot) and
processing trade (bills of materials, processing orders and the materials they consumed)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 10:00:00.000000

Written by hand.
"""
import sqlalchemy as sa
from alembic import op

import tradewindow.platform.db

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def _id(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(length=26), nullable=nullable)


def _moment(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, tradewindow.platform.db.UtcDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.add_column('bonded_lots', _id('source_lot_id', nullable=True))
    op.add_column('bonded_requests', _id('counterpart_book_id', nullable=True))
    op.add_column('bonded_requests', _id('counterpart_request_id', nullable=True))
    op.create_index('ix_bonded_requests_counterpart', 'bonded_requests', ['counterpart_book_id', 'status'],
                    unique=False)
    op.create_table('bonded_boms',
    _id('id'),
    _id('book_id'),
    _id('finished_item_id'),
    _id('material_item_id'),
    sa.Column('net_consumption', sa.String(length=40), nullable=False),
    sa.Column('loss_rate', sa.String(length=40), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_to', sa.Date(), nullable=True),
    _moment('created_at'),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['book_id'], ['bonded_books.id'], name=op.f('fk_bonded_boms_book_id_bonded_books')),
    sa.ForeignKeyConstraint(['finished_item_id'], ['bonded_items.id'],
                            name=op.f('fk_bonded_boms_finished_item_id_bonded_items')),
    sa.ForeignKeyConstraint(['material_item_id'], ['bonded_items.id'],
                            name=op.f('fk_bonded_boms_material_item_id_bonded_items')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bonded_boms')),
    sa.UniqueConstraint('book_id', 'finished_item_id', 'material_item_id', 'valid_from',
                        name=op.f('uq_bonded_boms_book_id_finished_item_id_material_item_id_valid_from'))
    )
    op.create_table('bonded_processing_orders',
    _id('id'),
    _id('book_id'),
    sa.Column('client_reference', sa.String(length=64), nullable=False),
    _id('finished_item_id'),
    _id('finished_lot_id'),
    sa.Column('quantity', sa.String(length=40), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    _moment('created_at'),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['book_id'], ['bonded_books.id'],
                            name=op.f('fk_bonded_processing_orders_book_id_bonded_books')),
    sa.ForeignKeyConstraint(['finished_item_id'], ['bonded_items.id'],
                            name=op.f('fk_bonded_processing_orders_finished_item_id_bonded_items')),
    sa.ForeignKeyConstraint(['finished_lot_id'], ['bonded_lots.id'],
                            name=op.f('fk_bonded_processing_orders_finished_lot_id_bonded_lots')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bonded_processing_orders')),
    sa.UniqueConstraint('book_id', 'client_reference',
                        name=op.f('uq_bonded_processing_orders_book_id_client_reference'))
    )
    op.create_table('bonded_processing_materials',
    _id('id'),
    _id('order_id'),
    _id('material_item_id'),
    _id('bom_id'),
    sa.Column('allowed', sa.String(length=40), nullable=False),
    sa.Column('used', sa.String(length=40), nullable=False),
    sa.Column('taxable_excess', sa.String(length=40), nullable=False),
    sa.Column('excess_value', sa.String(length=40), nullable=True),
    sa.Column('excess_taxes', sa.JSON(none_as_null=True), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['bonded_processing_orders.id'],
                            name=op.f('fk_bonded_processing_materials_order_id_bonded_processing_orders')),
    sa.ForeignKeyConstraint(['material_item_id'], ['bonded_items.id'],
                            name=op.f('fk_bonded_processing_materials_material_item_id_bonded_items')),
    sa.ForeignKeyConstraint(['bom_id'], ['bonded_boms.id'],
                            name=op.f('fk_bonded_processing_materials_bom_id_bonded_boms')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bonded_processing_materials'))
    )
    op.create_index('ix_bonded_processing_materials_order', 'bonded_processing_materials', ['order_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_bonded_processing_materials_order', table_name='bonded_processing_materials')
    op.drop_table('bonded_processing_materials')
    op.drop_table('bonded_processing_orders')
    op.drop_table('bonded_boms')
    op.drop_index('ix_bonded_requests_counterpart', table_name='bonded_requests')
    with op.batch_alter_table('bonded_requests') as batch:
        batch.drop_column('counterpart_request_id')
        batch.drop_column('counterpart_book_id')
    with op.batch_alter_table('bonded_lots') as batch:
        batch.drop_column('source_lot_id')
