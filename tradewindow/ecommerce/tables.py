"""Cross-border e-commerce tables: the three documents as received, the parcels' results and each
buyer's running total for a calendar year.

The buyer is the natural owner (DESIGN.md §5): parcels and year totals are keyed by the buyer's
identity number first, so they can be partitioned by buyer later. The documents are unique by their
own numbers across all buyers (a number used twice is `duplicate` whoever the buyer), so their
keys cannot carry the buyer; their numbers are their keys (no id: nothing needs one, and every
index costs the bulk path per row)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from tradewindow.platform.db import Json, UtcDateTime, id_column_type, metadata

cbec_orders = Table(
    "cbec_orders", metadata,
    Column("order_no", String(64), primary_key=True),
    Column("buyer_id_number", String(32), nullable=False),
    Column("ordered_at", UtcDateTime(), nullable=False),
    Column("sender_id", id_column_type()),               # the platform enterprise that sent it
    Column("body", Json(), nullable=False),   # model.canonical(record): a repeat is the same canonical text
    Column("received_at", UtcDateTime(), nullable=False),
    Index("ix_cbec_orders_buyer", "buyer_id_number", "ordered_at"),
)

cbec_payments = Table(
    "cbec_payments", metadata,
    Column("payment_no", String(64), primary_key=True),
    Column("order_no", String(64), nullable=False, unique=True),   # one payment per order
    Column("sender_id", id_column_type()),
    Column("body", Json(), nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
)

cbec_waybills = Table(
    "cbec_waybills", metadata,
    Column("waybill_no", String(64), primary_key=True),
    Column("order_no", String(64), nullable=False, unique=True),   # one waybill per order
    Column("sender_id", id_column_type()),
    Column("body", Json(), nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
)

cbec_parcels = Table(
    "cbec_parcels", metadata,
    Column("buyer_id_number", String(32), primary_key=True),
    Column("order_no", String(64), primary_key=True),
    Column("id", id_column_type(), nullable=False),
    Column("year", Integer, nullable=False),
    Column("waybill_no", String(64), nullable=False),
    Column("platform_id", id_column_type()),
    Column("payment_sender_id", id_column_type()),
    Column("logistics_sender_id", id_column_type()),
    Column("ordered_at", UtcDateTime(), nullable=False),
    Column("decision", String(10), nullable=False),
    Column("reasons", Json(), nullable=False),
    Column("status", String(10), nullable=False),         # decided | cancelled
    Column("customs_value_fen", BigInteger, nullable=False),
    Column("duty_fen", BigInteger, nullable=False),
    Column("consumption_tax_fen", BigInteger, nullable=False),
    Column("vat_fen", BigInteger, nullable=False),
    Column("total_tax_fen", BigInteger, nullable=False),
    Column("counted_fen", BigInteger, nullable=False),     # what it added to the buyer's year
    Column("year_total_after_fen", BigInteger, nullable=False),
    Column("decided_at", UtcDateTime(), nullable=False),
    Column("cancelled_at", UtcDateTime()),
    Column("cancel_reason", Text),
    Index("ix_cbec_parcels_order_no", "order_no"),
    Index("ix_cbec_parcels_decision", "decision", "decided_at"),
    Index("ix_cbec_parcels_platform", "platform_id", "decided_at"),
)

cbec_buyer_years = Table(
    "cbec_buyer_years", metadata,
    Column("buyer_id_number", String(32), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("total_fen", BigInteger, nullable=False),
    Column("parcels", Integer, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)
