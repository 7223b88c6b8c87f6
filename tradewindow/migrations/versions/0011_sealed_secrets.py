"""secrets at rest: custodial signing keys and webhook signing secrets sealed under the master key
(platform/vault.py) instead of stored in clear

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22 21:40:00.000000

Written by hand. Needs the installation's master key file (TRADEWINDOW_SECRET_KEY_FILE), which it
creates when there is none yet; downgrading writes the secrets back in clear.
"""
import base64

import sqlalchemy as sa
from alembic import op

from tradewindow.platform import vault

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

# (table, column, how the clear value becomes bytes, and back)
SECRETS = [
    ("signing_keys", "private_key", base64.b64decode, lambda raw: base64.b64encode(raw).decode()),
    ("webhook_subscriptions", "secret", str.encode, bytes.decode),
]


def upgrade() -> None:
    conn = op.get_bind()
    for table, column, to_bytes, _ in SECRETS:
        for row_id, value in _stored(conn, table, column):
            if not value.startswith(vault.PREFIX):
                sealed = vault.seal(to_bytes(value), vault.row_purpose(table, column, row_id))
                conn.execute(sa.text(f"UPDATE {table} SET {column} = :v WHERE id = :id"), {"v": sealed, "id": row_id})


def downgrade() -> None:
    conn = op.get_bind()
    for table, column, _, from_bytes in SECRETS:
        for row_id, value in _stored(conn, table, column):
            if value.startswith(vault.PREFIX):
                clear = from_bytes(vault.unseal(value, vault.row_purpose(table, column, row_id)))
                conn.execute(sa.text(f"UPDATE {table} SET {column} = :v WHERE id = :id"), {"v": clear, "id": row_id})


def _stored(conn: sa.Connection, table: str, column: str) -> list:
    """The column's values by row id, all read before any is rewritten."""
    return conn.execute(sa.text(f"SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL")).all()
