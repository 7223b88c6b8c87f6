"""logistics: EPCIS events and their links to equipment without foreign keys — capture writes them
in bulk (COPY), and each key checked was a lookup and a row lock per row (five per event), a
fifth of PostgreSQL's work of a capture; capture itself only writes keys it has just read or
written in the same transaction (as the e-commerce bulk tables, containment and seals already do)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-22 22:06:00.000000

Written by hand. On SQLite the two tables are rebuilt (tracked_events first: it referred to
epcis_events), and the partial indexes of epcis_events made again as they were.
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

KEYS = [
    ('tracked_events', 'fk_tracked_events_consignment_id_consignments', ['consignment_id'], 'consignments', ['id']),
    ('tracked_events', 'fk_tracked_events_equipment_id_equipment', ['equipment_id'], 'equipment', ['id']),
    ('tracked_events', 'fk_tracked_events_event_pk_epcis_events', ['event_pk'], 'epcis_events', ['pk']),
    ('epcis_events', 'fk_epcis_events_capture_id_epcis_captures', ['capture_id'], 'epcis_captures', ['id']),
    ('epcis_events', 'fk_epcis_events_captured_by_enterprises', ['captured_by'], 'enterprises', ['id']),
]


def _partial_indexes() -> None:
    op.drop_index('ix_epcis_events_epcs', table_name='epcis_events')
    op.drop_index('ix_epcis_events_parent_epc', table_name='epcis_events')
    op.create_index('ix_epcis_events_epcs', 'epcis_events', ['epcs'], unique=False, sqlite_where=sa.text('0'))
    op.create_index('ix_epcis_events_parent_epc', 'epcis_events', ['parent_epc'], unique=False,
                    sqlite_where=sa.text('parent_epc IS NOT NULL'))


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, name, *_ in KEYS:
            op.drop_constraint(name, table, type_='foreignkey')
        return
    for table in ('tracked_events', 'epcis_events'):
        with op.batch_alter_table(table, recreate='always') as batch:
            for owner, name, *_ in KEYS:
                if owner == table:
                    batch.drop_constraint(name, type_='foreignkey')
    _partial_indexes()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, name, columns, target, keys in reversed(KEYS):
            op.create_foreign_key(name, table, target, columns, keys)
        return
    for table in ('epcis_events', 'tracked_events'):
        with op.batch_alter_table(table, recreate='always') as batch:
            for owner, name, columns, target, keys in KEYS:
                if owner == table:
                    batch.create_foreign_key(name, target, columns, keys)
    _partial_indexes()
