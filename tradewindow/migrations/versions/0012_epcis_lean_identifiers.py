"""logistics: the EPCs an event names on its own row (parent_epc, and the others as one list:
text[] with a GIN index on PostgreSQL, a JSON array on SQLite) instead of one epcis_event_epcs row
per EPC; containment one row per aggregation (its children as a list) instead of one per child

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-22 21:50:00.000000

Written by hand. Moves the data: each event's identifier rows become its parent_epc and epcs;
containment rows of one event, parent, since and until become one row (the first row's id).
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def _epc_list() -> sa.types.TypeEngine:
    return sa.JSON(none_as_null=True).with_variant(postgresql.ARRAY(sa.Text), "postgresql")


def upgrade() -> None:
    conn = op.get_bind()
    pg = conn.dialect.name == "postgresql"
    op.add_column('epcis_events', sa.Column('parent_epc', sa.Text(), nullable=True))
    # SQLite cannot make a column NOT NULL in place, and rebuilding epcis_events would break the
    # foreign keys to it: there the column comes with a default for the existing rows.
    op.add_column('epcis_events', sa.Column('epcs', _epc_list(), nullable=pg,
                                            **({} if pg else {"server_default": "[]"})))
    op.add_column('containment', sa.Column('children', _epc_list(), nullable=True))
    if pg:
        op.execute("UPDATE epcis_events e SET parent_epc = p.epc FROM ("
                   "SELECT event_pk, min(epc) AS epc FROM epcis_event_epcs WHERE role = 'parent' GROUP BY event_pk"
                   ") p WHERE p.event_pk = e.pk")
        op.execute("UPDATE epcis_events e SET epcs = x.epcs FROM ("
                   "SELECT event_pk, array_agg(DISTINCT epc::text) AS epcs FROM epcis_event_epcs "
                   "WHERE role <> 'parent' GROUP BY event_pk) x WHERE x.event_pk = e.pk")
        op.execute("UPDATE epcis_events SET epcs = '{}' WHERE epcs IS NULL")
        op.execute("UPDATE containment c SET children = g.children FROM ("
                   "SELECT min(id) AS id, array_agg(child_epc::text ORDER BY id) AS children FROM containment "
                   "GROUP BY parent_epc, since, until, event_pk) g WHERE g.id = c.id")
    else:
        op.execute("UPDATE epcis_events SET parent_epc = (SELECT min(epc) FROM epcis_event_epcs "
                   "WHERE event_pk = epcis_events.pk AND role = 'parent')")
        op.execute("UPDATE epcis_events SET epcs = (SELECT json_group_array(epc) FROM ("
                   "SELECT DISTINCT epc FROM epcis_event_epcs WHERE event_pk = epcis_events.pk "
                   "AND role <> 'parent' ORDER BY epc))")
        same = ("c2.parent_epc = containment.parent_epc AND c2.since = containment.since "
                "AND c2.until IS containment.until AND c2.event_pk = containment.event_pk")
        op.execute(f"UPDATE containment SET children = (SELECT json_group_array(child_epc) FROM ("
                   f"SELECT c2.child_epc FROM containment c2 WHERE {same} ORDER BY c2.id)) "
                   f"WHERE id = (SELECT min(c2.id) FROM containment c2 WHERE {same})")
    op.execute("DELETE FROM containment WHERE children IS NULL")
    op.drop_index('ix_epcis_event_epcs_epc', table_name='epcis_event_epcs')
    op.drop_table('epcis_event_epcs')
    op.drop_index('ix_containment_child', table_name='containment')
    if pg:
        op.alter_column('epcis_events', 'epcs', existing_type=_epc_list(), nullable=False)
    with op.batch_alter_table('containment') as batch:
        batch.drop_column('child_epc')
        batch.alter_column('children', existing_type=_epc_list(), nullable=False)
    op.create_index('ix_epcis_events_epcs', 'epcis_events', ['epcs'], unique=False,
                    postgresql_using='gin', postgresql_with={'fastupdate': 'off'}, sqlite_where=sa.text('0'))
    op.create_index('ix_epcis_events_parent_epc', 'epcis_events', ['parent_epc'], unique=False,
                    postgresql_where=sa.text('parent_epc IS NOT NULL'), sqlite_where=sa.text('parent_epc IS NOT NULL'))
    op.create_index('ix_containment_event', 'containment', ['event_pk'], unique=False)


def downgrade() -> None:
    conn = op.get_bind()
    pg = conn.dialect.name == "postgresql"
    op.create_table('epcis_event_epcs',
    sa.Column('event_pk', sa.String(length=26), nullable=False),
    sa.Column('epc', sa.String(length=300), nullable=False),
    sa.Column('role', sa.String(length=10), nullable=False),
    sa.ForeignKeyConstraint(['event_pk'], ['epcis_events.pk'], name=op.f('fk_epcis_event_epcs_event_pk_epcis_events')),
    sa.PrimaryKeyConstraint('event_pk', 'epc', 'role', name=op.f('pk_epcis_event_epcs'))
    )
    op.create_index('ix_epcis_event_epcs_epc', 'epcis_event_epcs', ['epc'], unique=False)
    # The roles other than parent were one list: an aggregation's are its children, others' the epcList
    # (transformation events' inputs and outputs come back as epcs).
    role = "CASE WHEN e.event_type = 'AggregationEvent' THEN 'child' ELSE 'epc' END"
    if pg:
        op.execute(f"INSERT INTO epcis_event_epcs (event_pk, epc, role) SELECT DISTINCT e.pk, left(x.epc, 300), {role} "
                   "FROM epcis_events e, unnest(e.epcs) AS x(epc)")
    else:
        op.execute(f"INSERT OR IGNORE INTO epcis_event_epcs (event_pk, epc, role) SELECT e.pk, substr(j.value, 1, 300), "
                   f"{role} FROM epcis_events e, json_each(e.epcs) j")
    op.execute("INSERT INTO epcis_event_epcs (event_pk, epc, role) SELECT pk, parent_epc, 'parent' FROM epcis_events "
               "WHERE parent_epc IS NOT NULL")
    op.add_column('containment', sa.Column('child_epc', sa.String(length=300), nullable=True))
    # Each group row keeps its id for its first child; the others get ids derived from it.
    if pg:
        op.execute("INSERT INTO containment (id, parent_epc, children, child_epc, since, until, event_pk) "
                   "SELECT left(c.id, 20) || lpad(x.n::text, 6, '0'), c.parent_epc, '{}', x.epc, c.since, c.until, "
                   "c.event_pk FROM containment c, unnest(c.children) WITH ORDINALITY AS x(epc, n) WHERE x.n > 1")
        op.execute("UPDATE containment SET child_epc = children[1] WHERE child_epc IS NULL")
    else:
        op.execute("INSERT INTO containment (id, parent_epc, children, child_epc, since, until, event_pk) "
                   "SELECT substr(c.id, 1, 20) || substr('000000' || (j.key + 1), -6), c.parent_epc, '[]', j.value, "
                   "c.since, c.until, c.event_pk FROM containment c, json_each(c.children) j WHERE j.key > 0")
        op.execute("UPDATE containment SET child_epc = json_extract(children, '$[0]') WHERE child_epc IS NULL")
    op.drop_index('ix_containment_event', table_name='containment')
    op.drop_index('ix_epcis_events_parent_epc', table_name='epcis_events')
    op.drop_index('ix_epcis_events_epcs', table_name='epcis_events')
    with op.batch_alter_table('containment') as batch:
        batch.drop_column('children')
        batch.alter_column('child_epc', existing_type=sa.String(length=300), nullable=False)
    op.create_index('ix_containment_child', 'containment', ['child_epc'], unique=False)
    op.drop_column('epcis_events', 'epcs')
    op.drop_column('epcis_events', 'parent_epc')
