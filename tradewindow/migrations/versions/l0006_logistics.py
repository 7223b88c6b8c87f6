"""logistics: consignments, legs, route stops, equipment, seals, EPCIS captures and events,
containment, tracked events, monitoring rules and alerts

Written by hand with only this context's tables: contexts built side by side branch from 0005 and
a later revision merges the heads.

Revision ID: l0006
Revises: 0005
Create Date: 2026-11-22 18:00:00
"""
import sqlalchemy as sa
from alembic import op

import tradewindow.platform.db

revision = 'l0006'
down_revision = '0005'
branch_labels = None
depends_on = None

TABLES = ('consignments', 'consignment_parties', 'consignment_legs', 'route_stops', 'equipment', 'seals',
          'epcis_captures', 'epcis_events', 'epcis_event_epcs', 'containment', 'tracked_events',
          'monitoring_rules', 'monitoring_alerts')


def upgrade() -> None:
    op.create_table('consignments',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('forwarder_id', sa.String(length=26), nullable=False),
    sa.Column('client_reference', sa.String(length=64), nullable=False),
    sa.Column('transport_document', sa.String(length=64), nullable=False),
    sa.Column('trader_id', sa.String(length=26), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('temperature_min', sa.String(length=20), nullable=True),
    sa.Column('temperature_max', sa.String(length=20), nullable=True),
    sa.Column('created_at', tradewindow.platform.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=26), nullable=True),
    sa.ForeignKeyConstraint(['forwarder_id'], ['enterprises.id'], name=op.f('fk_consignments_forwarder_id_enterprises')),
    sa.ForeignKeyConstraint(['trader_id'], ['enterprises.id'], name=op.f('fk_consignments_trader_id_enterprises')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consignments')),
    sa.UniqueConstraint('forwarder_id', 'client_reference', name=op.f('uq_consignments_forwarder_id_client_reference')),
    sa.UniqueConstraint('forwarder_id', 'transport_document', name=op.f('uq_consignments_forwarder_id_transport_document'))
    )
    op.create_table('consignment_parties',
    sa.Column('consignment_id', sa.String(length=26), nullable=False),
    sa.Column('enterprise_id', sa.String(length=26), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.ForeignKeyConstraint(['consignment_id'], ['consignments.id'], name=op.f('fk_consignment_parties_consignment_id_consignments')),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprises.id'], name=op.f('fk_consignment_parties_enterprise_id_enterprises')),
    sa.PrimaryKeyConstraint('consignment_id', 'enterprise_id', 'role', name=op.f('pk_consignment_parties'))
    )
    op.create_table('consignment_legs',
    sa.Column('consignment_id', sa.String(length=26), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('mode', sa.String(length=10), nullable=False),
    sa.Column('carrier_id', sa.String(length=26), nullable=False),
    sa.Column('stops', sa.JSON(none_as_null=True), nullable=False),
    sa.ForeignKeyConstraint(['carrier_id'], ['enterprises.id'], name=op.f('fk_consignment_legs_carrier_id_enterprises')),
    sa.ForeignKeyConstraint(['consignment_id'], ['consignments.id'], name=op.f('fk_consignment_legs_consignment_id_consignments')),
    sa.PrimaryKeyConstraint('consignment_id', 'seq', name=op.f('pk_consignment_legs'))
    )
    op.create_table('route_stops',
    sa.Column('consignment_id', sa.String(length=26), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('locode', sa.String(length=5), nullable=False),
    sa.Column('planned_arrival', tradewindow.platform.db.UtcDateTime(timezone=True), nullable=True),
    sa.Column('planned_departure', tradewindow.platform.db.UtcDateTime(timezone=True), nullable=True),
    sa.Column('actual_arrival', tradewindow.platform.db.UtcDateTime(timezone=True), nullable=True),
    sa.Column('actual_departure', tradewindow.platform.db.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['consignment_id'], ['consignments.id'], name=op.f('fk_route_stops_consignment_id_consignments')),
    sa.PrimaryKeyConstraint('consignment_id', 'seq', name=op.f('pk_route_stops'))
    )
    op.create_table('equipment',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('consignment_id', sa.String(length=26), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('number', sa.String(length=35), nullable=False),
    sa.Column('epc', sa.String(length=300), nullable=False),
    sa.Column('carried_on', sa.String(length=35), nullable=True),
    sa.Column('seal_number', sa.String(length=35), nullable=True),
    sa.Column('seal_kind', sa.String(length=10), nullable=True),
    sa.Column('seal_broken', sa.Boolean(), nullable=False),
    sa.Column('locode', sa.String(length=5), nullable=True),
    sa.Column('located_since', tradewindow.platform.db.UtcDateTime(timezone=True), nullable=True),
    sa.Column('last_event_time', tradewindow.platform.db.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['consignment_id'], ['consignments.id'], name=op.f('fk_equipment_consignment_id_consignments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_equipment')),
    sa.UniqueConstraint('consignment_id', 'number', name=op.f('uq_equipment_consignment_id_number'))
    )
    op.create_table('seals',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('equipment_id', sa.String(length=26), nullable=False),
    sa.Column('number', sa.String(length=35), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('recorded_at', tradewindow.platform.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('event_pk', sa.String(length=26), nullable=True),
    sa.ForeignKeyConstraint(['equipment_id'], ['equipment.id'], name=op.f('fk_seals_equipment_id_equipment')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_seals'))
    )
    op.create_table('epcis_captures',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('captured_by', sa.String(length=26), nullable=True),
    sa.Column('user_id', sa.String(length=26), nullable=True),
    sa.Column('captured_at', tradewindow.platform.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('context', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('event_count', sa.Integer(), nullable=False),
    sa.Column('new_count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['captured_by'], ['enterprises.id'], name=op.f('fk_epcis_captures_captured_by_enterprises')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_epcis_captures'))
    )
    op.create_table('epcis_events',
    sa.Column('pk', sa.String(length=26), nullable=False),
    sa.Column('event_id', sa.String(length=500), nullable=False),
    sa.Column('event_type', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=10), nullable=True),
    sa.Column('event_time', tradewindow.platform.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('time_zone_offset', sa.String(length=6), nullable=True),
    sa.Column('record_time', tradewindow.platform.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('biz_step', sa.String(length=300), nullable=True),
    sa.Column('disposition', sa.String(length=300), nullable=True),
    sa.Column('read_point', sa.String(length=300), nullable=True),
    sa.Column('biz_location', sa.String(length=300), nullable=True),
    sa.Column('locode', sa.String(length=5), nullable=True),
    sa.Column('capture_id', sa.String(length=26), nullable=False),
    sa.Column('captured_by', sa.String(length=26), nullable=True),
    sa.Column('body', sa.JSON(none_as_null=True), nullable=False),
    sa.ForeignKeyConstraint(['capture_id'], ['epcis_captures.id'], name=op.f('fk_epcis_events_capture_id_epcis_captures')),
    sa.ForeignKeyConstraint(['captured_by'], ['enterprises.id'], name=op.f('fk_epcis_events_captured_by_enterprises')),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_epcis_events')),
    sa.UniqueConstraint('event_id', name=op.f('uq_epcis_events_event_id'))
    )
    op.create_table('epcis_event_epcs',
    sa.Column('event_pk', sa.String(length=26), nullable=False),
    sa.Column('epc', sa.String(length=300), nullable=False),
    sa.Column('role', sa.String(length=10), nullable=False),
    sa.ForeignKeyConstraint(['event_pk'], ['epcis_events.pk'], name=op.f('fk_epcis_event_epcs_event_pk_epcis_events')),
    sa.PrimaryKeyConstraint('event_pk', 'epc', 'role', name=op.f('pk_epcis_event_epcs'))
    )
    op.create_table('containment',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('parent_epc', sa.String(length=300), nullable=False),
    sa.Column('child_epc', sa.String(length=300), nullable=False),
    sa.Column('since', tradewindow.platform.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('until', tradewindow.platform.db.UtcDateTime(timezone=True), nullable=True),
    sa.Column('event_pk', sa.String(length=26), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_containment'))
    )
    op.create_table('tracked_events',
    sa.Column('equipment_id', sa.String(length=26), nullable=False),
    sa.Column('event_pk', sa.String(length=26), nullable=False),
    sa.Column('consignment_id', sa.String(length=26), nullable=False),
    sa.Column('direct', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['consignment_id'], ['consignments.id'], name=op.f('fk_tracked_events_consignment_id_consignments')),
    sa.ForeignKeyConstraint(['equipment_id'], ['equipment.id'], name=op.f('fk_tracked_events_equipment_id_equipment')),
    sa.ForeignKeyConstraint(['event_pk'], ['epcis_events.pk'], name=op.f('fk_tracked_events_event_pk_epcis_events')),
    sa.PrimaryKeyConstraint('equipment_id', 'event_pk', name=op.f('pk_tracked_events'))
    )
    op.create_table('monitoring_rules',
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('params', sa.JSON(none_as_null=True), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('updated_at', tradewindow.platform.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('kind', name=op.f('pk_monitoring_rules'))
    )
    op.create_table('monitoring_alerts',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('consignment_id', sa.String(length=26), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('dedup_key', sa.String(length=200), nullable=False),
    sa.Column('equipment_number', sa.String(length=35), nullable=True),
    sa.Column('event_pk', sa.String(length=26), nullable=True),
    sa.Column('raised_at', tradewindow.platform.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('details', sa.JSON(none_as_null=True), nullable=False),
    sa.ForeignKeyConstraint(['consignment_id'], ['consignments.id'], name=op.f('fk_monitoring_alerts_consignment_id_consignments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_monitoring_alerts')),
    sa.UniqueConstraint('consignment_id', 'kind', 'dedup_key', name=op.f('uq_monitoring_alerts_consignment_id_kind_dedup_key'))
    )
    op.create_index('ix_consignment_parties_enterprise', 'consignment_parties', ['enterprise_id'], unique=False)
    op.create_index('ix_equipment_number', 'equipment', ['number'], unique=False)
    op.create_index('ix_equipment_epc', 'equipment', ['epc'], unique=False)
    op.create_index('ix_seals_equipment', 'seals', ['equipment_id'], unique=False)
    op.create_index('ix_epcis_events_biz_step', 'epcis_events', ['biz_step'], unique=False)
    op.create_index('ix_epcis_events_time', 'epcis_events', ['event_time', 'pk'], unique=False)
    op.create_index('ix_epcis_events_captured_by', 'epcis_events', ['captured_by'], unique=False)
    op.create_index('ix_epcis_event_epcs_epc', 'epcis_event_epcs', ['epc'], unique=False)
    op.create_index('ix_containment_parent', 'containment', ['parent_epc'], unique=False)
    op.create_index('ix_containment_child', 'containment', ['child_epc'], unique=False)
    op.create_index('ix_tracked_events_consignment', 'tracked_events', ['consignment_id'], unique=False)
    op.create_index('ix_tracked_events_event', 'tracked_events', ['event_pk'], unique=False)


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
