"""bonded: account books, items, lots, serialised units, requests and their lines, moves

Revision ID: b0006
Revises: 0005
Create Date: 2026-11-24 10:00:00.000000

Written by hand as a branch from 0005 (contexts are built side by side; a later revision merges
the heads).
"""
import sqlalchemy as sa
from alembic import op

import tradewindow.platform.db

revision = 'b0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def _id(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(length=26), nullable=nullable)


def _moment(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, tradewindow.platform.db.UtcDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table('bonded_books',
    _id('id'),
    _id('enterprise_id'),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    _moment('opened_at'),
    sa.Column('opened_by', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bonded_books')),
    sa.UniqueConstraint('enterprise_id', 'name', name=op.f('uq_bonded_books_enterprise_id_name'))
    )
    op.create_table('bonded_items',
    _id('id'),
    _id('book_id'),
    sa.Column('tariff_code', sa.String(length=10), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('unit', sa.String(length=3), nullable=False),
    sa.ForeignKeyConstraint(['book_id'], ['bonded_books.id'], name=op.f('fk_bonded_items_book_id_bonded_books')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bonded_items')),
    sa.UniqueConstraint('book_id', 'tariff_code', 'description', 'unit',
                        name=op.f('uq_bonded_items_book_id_tariff_code_description_unit'))
    )
    op.create_table('bonded_lots',
    _id('id'),
    _id('book_id'),
    _id('item_id'),
    _id('declaration_id'),
    sa.Column('declaration_number', sa.String(length=30), nullable=False),
    sa.Column('line_number', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.String(length=40), nullable=False),
    sa.Column('origin', sa.String(length=2), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('value', sa.String(length=40), nullable=False),
    sa.Column('net_mass_kg', sa.String(length=40), nullable=True),
    sa.Column('gross_mass_kg', sa.String(length=40), nullable=True),
    sa.Column('country_of_dispatch', sa.String(length=2), nullable=True),
    sa.Column('customs_office', sa.String(length=20), nullable=False),
    _moment('received_at'),
    sa.ForeignKeyConstraint(['book_id'], ['bonded_books.id'], name=op.f('fk_bonded_lots_book_id_bonded_books')),
    sa.ForeignKeyConstraint(['item_id'], ['bonded_items.id'], name=op.f('fk_bonded_lots_item_id_bonded_items')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bonded_lots')),
    sa.UniqueConstraint('declaration_id', 'line_number', name=op.f('uq_bonded_lots_declaration_id_line_number'))
    )
    op.create_index('ix_bonded_lots_book', 'bonded_lots', ['book_id', 'item_id'], unique=False)
    op.create_table('bonded_units',
    _id('id'),
    _id('book_id'),
    _id('lot_id'),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('serial', sa.String(length=20), nullable=False),
    sa.ForeignKeyConstraint(['book_id'], ['bonded_books.id'], name=op.f('fk_bonded_units_book_id_bonded_books')),
    sa.ForeignKeyConstraint(['lot_id'], ['bonded_lots.id'], name=op.f('fk_bonded_units_lot_id_bonded_lots')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bonded_units')),
    sa.UniqueConstraint('book_id', 'serial', name=op.f('uq_bonded_units_book_id_serial'))
    )
    op.create_index('ix_bonded_units_serial', 'bonded_units', ['serial'], unique=False)
    op.create_table('bonded_requests',
    _id('id'),
    _id('book_id'),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('client_reference', sa.String(length=64), nullable=False),
    _id('declaration_id', nullable=True),
    sa.Column('declaration_number', sa.String(length=30), nullable=True),
    sa.Column('due_day', sa.Date(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    _moment('created_at'),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    _moment('done_at', nullable=True),
    sa.ForeignKeyConstraint(['book_id'], ['bonded_books.id'], name=op.f('fk_bonded_requests_book_id_bonded_books')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bonded_requests')),
    sa.UniqueConstraint('book_id', 'client_reference', name=op.f('uq_bonded_requests_book_id_client_reference'))
    )
    op.create_index('ix_bonded_requests_declaration', 'bonded_requests', ['declaration_id'], unique=False)
    op.create_table('bonded_request_lines',
    _id('id'),
    _id('request_id'),
    _id('lot_id'),
    _id('unit_id', nullable=True),
    sa.Column('location', sa.String(length=30), nullable=False),
    sa.Column('quantity', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['lot_id'], ['bonded_lots.id'], name=op.f('fk_bonded_request_lines_lot_id_bonded_lots')),
    sa.ForeignKeyConstraint(['request_id'], ['bonded_requests.id'],
                            name=op.f('fk_bonded_request_lines_request_id_bonded_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bonded_request_lines'))
    )
    op.create_index('ix_bonded_request_lines_lot', 'bonded_request_lines', ['lot_id'], unique=False)
    op.create_index('ix_bonded_request_lines_request', 'bonded_request_lines', ['request_id'], unique=False)
    op.create_table('bonded_moves',
    _id('id'),
    _id('book_id'),
    _id('lot_id'),
    _id('item_id'),
    _id('unit_id', nullable=True),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('from_location', sa.String(length=30), nullable=False),
    sa.Column('to_location', sa.String(length=30), nullable=False),
    sa.Column('quantity', sa.String(length=40), nullable=False),
    _id('request_id', nullable=True),
    _id('declaration_id', nullable=True),
    sa.Column('declaration_number', sa.String(length=30), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    _moment('moved_at'),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('moved_by', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['book_id'], ['bonded_books.id'], name=op.f('fk_bonded_moves_book_id_bonded_books')),
    sa.ForeignKeyConstraint(['item_id'], ['bonded_items.id'], name=op.f('fk_bonded_moves_item_id_bonded_items')),
    sa.ForeignKeyConstraint(['lot_id'], ['bonded_lots.id'], name=op.f('fk_bonded_moves_lot_id_bonded_lots')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bonded_moves'))
    )
    op.create_index('ix_bonded_moves_book_day', 'bonded_moves', ['book_id', 'day'], unique=False)
    op.create_index('ix_bonded_moves_lot', 'bonded_moves', ['lot_id'], unique=False)
    op.create_index('ix_bonded_moves_unit', 'bonded_moves', ['unit_id'], unique=False)


def downgrade() -> None:
    for table in ('bonded_moves', 'bonded_request_lines', 'bonded_requests', 'bonded_units', 'bonded_lots',
                  'bonded_items', 'bonded_books'):
        op.drop_table(table)
