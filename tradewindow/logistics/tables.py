"""Logistics tables: consignments, their parties, route stops and equipment, seals; EPCIS captures,
events, the identifiers they name and what contains what; which events concern which equipment;
monitoring rules and the alerts they raised."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint, text
from sqlalchemy.dialects import postgresql

from tradewindow.platform.db import Json, UtcDateTime, id_column_type, metadata


def EpcList() -> JSON:  # noqa: N802 - reads like a column type
    """A list of EPCs: text[] on PostgreSQL (a GIN index finds the rows naming an EPC), compared
    byte by byte (see `Identifier`), a JSON array elsewhere."""
    return JSON(none_as_null=True).with_variant(postgresql.ARRAY(Text(collation="C")), "postgresql")


def Identifier(length: int | None = None) -> String:  # noqa: N802 - reads like a column type
    """An EPC or event id: compared only for equality or by prefix, never sorted for people, so on
    PostgreSQL byte by byte (COLLATE "C": memcmp, where the database's locale would call strcoll
    for every comparison of every index probe and insert). SQLite compares bytes anyway."""
    plain = String(length) if length else Text()
    return plain.with_variant(String(length, collation="C") if length else Text(collation="C"), "postgresql")


# Only PostgreSQL indexes these (GIN over the EPC arrays); on SQLite the partial index is empty.
# Without fast update: capture looks up thousands of EPCs at once, and a scan compares each with
# every entry of the pending list (the product of the two), where the index proper finds each.
ON_POSTGRESQL_ONLY = {"postgresql_using": "gin", "postgresql_with": {"fastupdate": "off"}, "sqlite_where": text("0")}

consignments = Table(
    "consignments", metadata,
    Column("id", id_column_type(), primary_key=True),
    # The carrier or forwarder that reported it; the trader owns the goods.
    Column("forwarder_id", id_column_type(), ForeignKey("enterprises.id"), nullable=False),
    Column("client_reference", String(64), nullable=False),
    Column("transport_document", String(64), nullable=False),
    Column("trader_id", id_column_type(), ForeignKey("enterprises.id"), nullable=False),
    Column("description", String(500), nullable=False),
    Column("status", String(20), nullable=False),     # planned, in_transit, arrived
    Column("temperature_min", String(20)),            # degrees Celsius, a decimal as text
    Column("temperature_max", String(20)),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("created_by", id_column_type()),
    UniqueConstraint("forwarder_id", "client_reference"),
    UniqueConstraint("forwarder_id", "transport_document"),
)

# Who may see a consignment and is told about its alerts: the trader, the forwarder, each carrier.
consignment_parties = Table(
    "consignment_parties", metadata,
    Column("consignment_id", id_column_type(), ForeignKey("consignments.id"), primary_key=True),
    Column("enterprise_id", id_column_type(), ForeignKey("enterprises.id"), primary_key=True),
    Column("role", String(20), primary_key=True),     # trader, forwarder, carrier
    Index("ix_consignment_parties_enterprise", "enterprise_id"),
)

consignment_legs = Table(
    "consignment_legs", metadata,
    Column("consignment_id", id_column_type(), ForeignKey("consignments.id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("mode", String(10), nullable=False),
    Column("carrier_id", id_column_type(), ForeignKey("enterprises.id"), nullable=False),
    Column("stops", Json(), nullable=False),          # [{"locode", "planned_arrival", "planned_departure"}]
)

# The journey as one sequence of stops (legs joined at their common places), with what happened.
route_stops = Table(
    "route_stops", metadata,
    Column("consignment_id", id_column_type(), ForeignKey("consignments.id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("locode", String(5), nullable=False),
    Column("planned_arrival", UtcDateTime()),
    Column("planned_departure", UtcDateTime()),
    Column("actual_arrival", UtcDateTime()),
    Column("actual_departure", UtcDateTime()),
)

equipment = Table(
    "equipment", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("consignment_id", id_column_type(), ForeignKey("consignments.id"), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("number", String(35), nullable=False),
    Column("epc", Identifier(300), nullable=False),
    Column("carried_on", String(35)),
    # The current state, kept up to date from the events.
    Column("seal_number", String(35)),
    Column("seal_kind", String(10)),
    Column("seal_broken", Boolean, nullable=False),
    Column("locode", String(5)),
    Column("located_since", UtcDateTime()),
    Column("last_event_time", UtcDateTime()),
    UniqueConstraint("consignment_id", "number"),
    Index("ix_equipment_epc", "epc"),
    # A container travels on many consignments over the years: its latest is one probe of this index.
    Index("ix_equipment_number", "number", "consignment_id"),
)

seals = Table(
    "seals", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("equipment_id", id_column_type(), ForeignKey("equipment.id"), nullable=False),
    Column("number", String(35), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("status", String(10), nullable=False),     # intact, broken
    Column("recorded_at", UtcDateTime(), nullable=False),
    Column("event_pk", id_column_type()),             # null: declared when the consignment was reported
    Index("ix_seals_equipment", "equipment_id"),
)

epcis_captures = Table(
    "epcis_captures", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("captured_by", id_column_type(), ForeignKey("enterprises.id")),   # null: an officer or the system
    Column("user_id", id_column_type()),
    Column("captured_at", UtcDateTime(), nullable=False),
    Column("context", Json()),                        # the document's JSON-LD @context
    Column("event_count", Integer, nullable=False),
    Column("new_count", Integer, nullable=False),
)

epcis_events = Table(
    "epcis_events", metadata,
    Column("pk", id_column_type(), primary_key=True),
    Column("event_id", Identifier(500), nullable=False, unique=True),
    Column("event_type", String(100), nullable=False),
    Column("action", String(10)),
    Column("event_time", UtcDateTime(), nullable=False),
    Column("time_zone_offset", String(6)),
    Column("record_time", UtcDateTime(), nullable=False),
    Column("biz_step", String(300)),
    Column("disposition", String(300)),
    Column("read_point", String(300)),
    Column("biz_location", String(300)),
    Column("locode", String(5)),
    # No foreign keys on the rows capture writes in bulk (here and in tracked_events): it writes
    # only keys it has just read or written in the same transaction, and each key checked cost a
    # lookup and a row lock per row.
    Column("capture_id", id_column_type(), nullable=False),
    Column("captured_by", id_column_type()),
    Column("body", Json(), nullable=False),           # the event exactly as captured, extensions and all
    # The identifiers it names, on the event row (one row per event, not one per EPC): parentID,
    # and every other EPC (epcList, childEPCs, inputEPCList, outputEPCList) in one list.
    Column("parent_epc", Identifier()),
    Column("epcs", EpcList(), nullable=False),
    Index("ix_epcis_events_time", "event_time", "pk"),
    Index("ix_epcis_events_epcs", "epcs", **ON_POSTGRESQL_ONLY),
    Index("ix_epcis_events_parent_epc", "parent_epc", postgresql_where=text("parent_epc IS NOT NULL"),
          sqlite_where=text("parent_epc IS NOT NULL")),
    Index("ix_epcis_events_biz_step", "biz_step"),
    # No index on captured_by: its one filter is OR-ed with a subquery, which no index answers.
)

# What is packed in what (parcel -> mail bag -> container -> wagon), from aggregation events: the
# children one event put into a parent, since when, and until when (null: still inside). One row
# per aggregation, not per child: a row whose children leave at different times is split, so
# every child of a row shares its since and until. A child's rows are found through the events
# naming it (the GIN index of epcis_events.epcs, then event_pk). `holds_equipment`: some child is
# registered transport equipment (set when the row is written, and when equipment named in rows
# written before is reported): capture looks for the equipment inside everything a document names,
# parcels included, in the small index of only those rows' parents.
containment = Table(
    "containment", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("parent_epc", Identifier(300), nullable=False),
    Column("children", EpcList(), nullable=False),
    Column("since", UtcDateTime(), nullable=False),
    Column("until", UtcDateTime()),
    Column("event_pk", id_column_type(), nullable=False),
    Column("holds_equipment", Boolean, nullable=False),
    Index("ix_containment_parent", "parent_epc"),
    Index("ix_containment_event", "event_pk"),
    Index("ix_containment_equipment_parent", "parent_epc", postgresql_where=text("holds_equipment"),
          sqlite_where=text("holds_equipment")),
)

# Which events concern which equipment (directly, or through what carries or contains it).
tracked_events = Table(
    "tracked_events", metadata,
    Column("equipment_id", id_column_type(), primary_key=True),
    Column("event_pk", id_column_type(), primary_key=True),
    Column("consignment_id", id_column_type(), nullable=False),
    Column("direct", Boolean, nullable=False),
    Index("ix_tracked_events_consignment", "consignment_id"),
    Index("ix_tracked_events_event", "event_pk"),
)

monitoring_rules = Table(
    "monitoring_rules", metadata,
    Column("kind", String(40), primary_key=True),
    Column("params", Json(), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("updated_by", String(100), nullable=False),
)

monitoring_alerts = Table(
    "monitoring_alerts", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("consignment_id", id_column_type(), ForeignKey("consignments.id"), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("dedup_key", String(200), nullable=False),
    Column("equipment_number", String(35)),
    Column("event_pk", id_column_type()),
    Column("raised_at", UtcDateTime(), nullable=False),
    Column("message", Text, nullable=False),
    Column("details", Json(), nullable=False),
    UniqueConstraint("consignment_id", "kind", "dedup_key"),
)
