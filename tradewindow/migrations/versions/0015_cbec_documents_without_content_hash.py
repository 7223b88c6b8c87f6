"""ecommerce: the order, payment and waybill tables without their content_hash column — it was the
sha256 of the canonical text that the body column holds anyway; a document received again is
compared with the stored body's canonical text instead (model.stored_canonical_text). 65 bytes a
document, a fifth of a payment's row, and a hash per document fewer

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-23 00:10:00.000000

Written by hand. Downgrade computes every row's hash again from its body, as it was computed
when stored: sha256 of the body's JSON with sorted keys (model.canonical_text).
"""
import hashlib
import json

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

DOCUMENTS = (('cbec_orders', 'order_no'), ('cbec_payments', 'payment_no'), ('cbec_waybills', 'waybill_no'))
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False)   # as model.canonical_text writes


def upgrade() -> None:
    for table, _ in DOCUMENTS:
        with op.batch_alter_table(table, recreate='auto') as batch:
            batch.drop_column('content_hash')


def downgrade() -> None:
    conn = op.get_bind()
    for table, number in DOCUMENTS:
        op.add_column(table, sa.Column('content_hash', sa.String(length=64), nullable=True))
        rows = conn.execute(sa.text(f'SELECT {number}, body FROM {table}')).all()
        if rows:
            conn.execute(sa.text(f'UPDATE {table} SET content_hash = :hash WHERE {number} = :number'), [
                {'hash': hashlib.sha256(_CANONICAL_JSON.encode(
                    body if isinstance(body, dict) else json.loads(body)).encode()).hexdigest(), 'number': n}
                for n, body in rows])
        with op.batch_alter_table(table, recreate='auto') as batch:
            batch.alter_column('content_hash', existing_type=sa.String(length=64), nullable=False)
