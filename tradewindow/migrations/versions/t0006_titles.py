"""titles: signing keys, bills of lading, their hash-chained records, published heads

Revision ID: t0006
Revises: 0005
Create Date: 2026-11-23 10:00:00.000000

Written by hand as a branch from 0005 (contexts are built side by side; a later revision merges
the heads).
"""
import sqlalchemy as sa
from alembic import op

import tradewindow.platform.db

revision = 't0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('signing_keys',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('enterprise_id', sa.String(length=26), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('public_key', sa.String(length=100), nullable=False),
    sa.Column('private_key', sa.String(length=100), nullable=True),
    sa.Column('custodial', sa.Boolean(), nullable=False),
    sa.Column('created_at', tradewindow.platform.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('retired_at', tradewindow.platform.db.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_signing_keys')),
    sa.UniqueConstraint('fingerprint', name=op.f('uq_signing_keys_fingerprint'))
    )
    op.create_index('ix_signing_keys_enterprise', 'signing_keys', ['enterprise_id', 'retired_at'], unique=False)
    op.create_table('bills_of_lading',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('bol_number', sa.String(length=35), nullable=False),
    sa.Column('issuer_id', sa.String(length=26), nullable=False),
    sa.Column('shipper_id', sa.String(length=26), nullable=False),
    sa.Column('consignee_id', sa.String(length=26), nullable=True),
    sa.Column('goods_description', sa.Text(), nullable=False),
    sa.Column('packages', sa.Integer(), nullable=False),
    sa.Column('gross_mass_kg', sa.String(length=30), nullable=False),
    sa.Column('containers', sa.JSON(none_as_null=True), nullable=False),
    sa.Column('place_of_receipt', sa.String(length=5), nullable=False),
    sa.Column('place_of_delivery', sa.String(length=5), nullable=False),
    sa.Column('consignment_reference', sa.String(length=64), nullable=True),
    sa.Column('document_hash', sa.String(length=64), nullable=False),
    sa.Column('issued_at', tradewindow.platform.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('holder_id', sa.String(length=26), nullable=False),
    sa.Column('pledgee_id', sa.String(length=26), nullable=True),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('head_hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bills_of_lading')),
    sa.UniqueConstraint('bol_number', name=op.f('uq_bills_of_lading_bol_number'))
    )
    op.create_index('ix_bills_of_lading_holder', 'bills_of_lading', ['holder_id'], unique=False)
    op.create_index('ix_bills_of_lading_issuer', 'bills_of_lading', ['issuer_id'], unique=False)
    op.create_table('title_records',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('bill_id', sa.String(length=26), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('actor_id', sa.String(length=26), nullable=False),
    sa.Column('from_holder_id', sa.String(length=26), nullable=True),
    sa.Column('to_holder_id', sa.String(length=26), nullable=False),
    sa.Column('pledgee_id', sa.String(length=26), nullable=True),
    sa.Column('at', tradewindow.platform.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('previous_hash', sa.String(length=64), nullable=False),
    sa.Column('document_hash', sa.String(length=64), nullable=False),
    sa.Column('key_fingerprint', sa.String(length=64), nullable=False),
    sa.Column('signature', sa.String(length=100), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['bill_id'], ['bills_of_lading.id'], name=op.f('fk_title_records_bill_id_bills_of_lading')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_title_records')),
    sa.UniqueConstraint('bill_id', 'sequence', name='uq_title_records_bill_sequence')
    )
    op.create_index('ix_title_records_to_holder', 'title_records', ['to_holder_id'], unique=False)
    op.create_index('ix_title_records_pledgee', 'title_records', ['pledgee_id'], unique=False)
    op.create_table('title_checkpoints',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('published_at', tradewindow.platform.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('titles', sa.Integer(), nullable=False),
    sa.Column('root', sa.String(length=64), nullable=False),
    sa.Column('previous_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('published_by', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_title_checkpoints')),
    sa.UniqueConstraint('hash', name=op.f('uq_title_checkpoints_hash'))
    )
    op.create_table('title_heads',
    sa.Column('checkpoint_id', sa.String(length=26), nullable=False),
    sa.Column('bill_id', sa.String(length=26), nullable=False),
    sa.Column('bol_number', sa.String(length=35), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('head_hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['checkpoint_id'], ['title_checkpoints.id'], name=op.f('fk_title_heads_checkpoint_id_title_checkpoints')),
    sa.PrimaryKeyConstraint('checkpoint_id', 'bill_id', name=op.f('pk_title_heads'))
    )
    op.create_index('ix_title_heads_bill', 'title_heads', ['bill_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_title_heads_bill', table_name='title_heads')
    op.drop_table('title_heads')
    op.drop_table('title_checkpoints')
    op.drop_index('ix_title_records_pledgee', table_name='title_records')
    op.drop_index('ix_title_records_to_holder', table_name='title_records')
    op.drop_table('title_records')
    op.drop_index('ix_bills_of_lading_issuer', table_name='bills_of_lading')
    op.drop_index('ix_bills_of_lading_holder', table_name='bills_of_lading')
    op.drop_table('bills_of_lading')
    op.drop_index('ix_signing_keys_enterprise', table_name='signing_keys')
    op.drop_table('signing_keys')
