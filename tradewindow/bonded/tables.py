"""Bonded tables: account books, their items, lots (each traced to the declaration that brought it
in), serialised units (vehicles by VIN, containers by ISO 6346 number), moves, and the requests
(release, re-export, destruction, temporary removal, ...) whose lines reserve stock until their
declaration is released.

Moves are only ever inserted: balances are sums over them (model.balances). Quantities are exact
decimal text, summed in Python as Decimals, so SQLite and PostgreSQL give the same figures."""

from __future__ import annotations

from sqlalchemy import Column, Date, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint

from tradewindow.platform.db import UtcDateTime, id_column_type, metadata

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
    UniqueConstraint("book_id", "client_reference"),
    Index("ix_bonded_requests_declaration", "declaration_id"),
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
