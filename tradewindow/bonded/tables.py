"""Bonded tables: account books, their items, lots (each traced to the declaration that brought it
in), serialised units (vehicles by VIN, containers by ISO 6346 number), moves, and the requests
(release, re-export, destruction, temporary removal, ...) whose lines reserve stock until their
declaration is released.

Moves are only ever inserted: balances are sums over them (model.balances). Quantities are exact
decimal text, summed in Python as Decimals, so SQLite and PostgreSQL give the same figures."""

from __future__ import annotations

from sqlalchemy import Column, Date, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint

from tradewindow.platform.db import Json, UtcDateTime, id_column_type, metadata

bonded_books = Table(
    "bonded_books", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("enterprise_id", id_column_type(), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("name", String(200), nullable=False),
    Column("opened_at", UtcDateTime(), nullable=False),
    Column("opened_by", String(100), nullable=False),
    UniqueConstraint("enterprise_id", "name"),
)

bonded_items = Table(
    "bonded_items", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("book_id", id_column_type(), ForeignKey("bonded_books.id"), nullable=False),
    Column("tariff_code", String(10), nullable=False),
    Column("description", String(255), nullable=False),
    Column("unit", String(3), nullable=False),
    UniqueConstraint("book_id", "tariff_code", "description", "unit"),
)

bonded_lots = Table(
    "bonded_lots", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("book_id", id_column_type(), ForeignKey("bonded_books.id"), nullable=False),
    Column("item_id", id_column_type(), ForeignKey("bonded_items.id"), nullable=False),
    Column("declaration_id", id_column_type(), nullable=False),
    Column("declaration_number", String(30), nullable=False),
    Column("line_number", Integer, nullable=False),
    Column("quantity", String(40), nullable=False),           # as admitted
    Column("origin", String(2)),
    Column("currency", String(3), nullable=False),
    Column("value", String(40), nullable=False),              # the line's declared value, in currency
    Column("net_mass_kg", String(40)),
    Column("gross_mass_kg", String(40)),
    Column("country_of_dispatch", String(2)),
    Column("customs_office", String(20), nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    # A lot that came from another book (transfer) or out of processing: declaration_id is then
    # the transfer-in request or the processing order that made it, and source_lot_id the lot it
    # was carved from (None for processing output).
    Column("source_lot_id", id_column_type()),
    UniqueConstraint("declaration_id", "line_number"),
    Index("ix_bonded_lots_book", "book_id", "item_id"),
)

bonded_units = Table(
    "bonded_units", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("book_id", id_column_type(), ForeignKey("bonded_books.id"), nullable=False),
    Column("lot_id", id_column_type(), ForeignKey("bonded_lots.id"), nullable=False),
    Column("kind", String(20), nullable=False),               # vehicle | container
    Column("serial", String(20), nullable=False),             # VIN or ISO 6346 number
    UniqueConstraint("book_id", "serial"),
    Index("ix_bonded_units_serial", "serial"),
)

bonded_requests = Table(
    "bonded_requests", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("book_id", id_column_type(), ForeignKey("bonded_books.id"), nullable=False),
    Column("kind", String(30), nullable=False),               # model.MoveKind
    Column("status", String(20), nullable=False),             # pending | done | cancelled
    Column("client_reference", String(64), nullable=False),
    Column("declaration_id", id_column_type()),
    Column("declaration_number", String(30)),
    Column("due_day", Date),                                  # temporary removal: return deadline
    Column("reason", Text, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("done_at", UtcDateTime()),
    # Transfers: the other book (destination of a transfer-out, source of a transfer-in) and,
    # once approved, the other book's request.
    Column("counterpart_book_id", id_column_type()),
    Column("counterpart_request_id", id_column_type()),
    UniqueConstraint("book_id", "client_reference"),
    Index("ix_bonded_requests_declaration", "declaration_id"),
    Index("ix_bonded_requests_counterpart", "counterpart_book_id", "status"),
)

bonded_request_lines = Table(
    "bonded_request_lines", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("request_id", id_column_type(), ForeignKey("bonded_requests.id"), nullable=False),
    Column("lot_id", id_column_type(), ForeignKey("bonded_lots.id"), nullable=False),
    Column("unit_id", id_column_type()),
    Column("location", String(30), nullable=False),
    Column("quantity", String(40), nullable=False),
    Index("ix_bonded_request_lines_lot", "lot_id"),
    Index("ix_bonded_request_lines_request", "request_id"),
)

bonded_moves = Table(
    "bonded_moves", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("book_id", id_column_type(), ForeignKey("bonded_books.id"), nullable=False),
    Column("lot_id", id_column_type(), ForeignKey("bonded_lots.id"), nullable=False),
    Column("item_id", id_column_type(), ForeignKey("bonded_items.id"), nullable=False),
    Column("unit_id", id_column_type()),
    Column("kind", String(30), nullable=False),
    Column("from_location", String(30), nullable=False),
    Column("to_location", String(30), nullable=False),
    Column("quantity", String(40), nullable=False),
    Column("request_id", id_column_type()),
    Column("declaration_id", id_column_type()),               # the document that caused the move
    Column("declaration_number", String(30)),
    Column("note", Text, nullable=False),
    Column("moved_at", UtcDateTime(), nullable=False),
    Column("day", Date, nullable=False),                      # the zone's business day
    Column("moved_by", String(100), nullable=False),
    Index("ix_bonded_moves_book_day", "book_id", "day"),
    Index("ix_bonded_moves_lot", "lot_id"),
    Index("ix_bonded_moves_unit", "unit_id"),
)

# --- processing trade (migration 0008) ---------------------------------------------------------------

bonded_boms = Table(
    "bonded_boms", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("book_id", id_column_type(), ForeignKey("bonded_books.id"), nullable=False),
    Column("finished_item_id", id_column_type(), ForeignKey("bonded_items.id"), nullable=False),
    Column("material_item_id", id_column_type(), ForeignKey("bonded_items.id"), nullable=False),
    Column("net_consumption", String(40), nullable=False),
    Column("loss_rate", String(40), nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_to", Date),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("created_by", String(100), nullable=False),
    UniqueConstraint("book_id", "finished_item_id", "material_item_id", "valid_from"),
)

bonded_processing_orders = Table(
    "bonded_processing_orders", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("book_id", id_column_type(), ForeignKey("bonded_books.id"), nullable=False),
    Column("client_reference", String(64), nullable=False),
    Column("finished_item_id", id_column_type(), ForeignKey("bonded_items.id"), nullable=False),
    Column("finished_lot_id", id_column_type(), ForeignKey("bonded_lots.id"), nullable=False),
    Column("quantity", String(40), nullable=False),
    Column("day", Date, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("created_by", String(100), nullable=False),
    UniqueConstraint("book_id", "client_reference"),
)

bonded_processing_materials = Table(
    "bonded_processing_materials", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("order_id", id_column_type(), ForeignKey("bonded_processing_orders.id"), nullable=False),
    Column("material_item_id", id_column_type(), ForeignKey("bonded_items.id"), nullable=False),
    Column("bom_id", id_column_type(), ForeignKey("bonded_boms.id"), nullable=False),
    Column("allowed", String(40), nullable=False),            # finished quantity × unit consumption
    Column("used", String(40), nullable=False),
    Column("taxable_excess", String(40), nullable=False),     # used beyond the allowance
    Column("excess_value", String(40)),                       # in the material lots' currency
    Column("excess_taxes", Json()),                             # the duty and taxes the excess carries
    Index("ix_bonded_processing_materials_order", "order_id"),
)
