"""Customs tables: declarations and their versions, items, documents, agency tasks, lane
decisions, inspection results, payments, corrections, numbering."""

from __future__ import annotations

from sqlalchemy import (
                        BigInteger,
                        Boolean,
                        Column,
                        Date,
                        ForeignKey,
                        Index,
                        Integer,
                        LargeBinary,
                        String,
                        Table,
                        Text,
                        UniqueConstraint,
)

from tradewindow.platform.db import Json, UtcDateTime, id_column_type, metadata

declarations = Table(
    "declarations", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("number", String(30), nullable=False, unique=True),
    # The declarant files (a trader for itself, or a broker); the trader owns the goods.
    Column("declarant_id", id_column_type(), ForeignKey("enterprises.id"), nullable=False),
    Column("client_reference", String(64), nullable=False),
    Column("trader_id", id_column_type(), ForeignKey("enterprises.id"), nullable=False),
    Column("lodged_by", id_column_type(), nullable=False),
    Column("type", String(20), nullable=False),
    Column("customs_office", String(20), nullable=False),
    Column("transport_mode", String(10), nullable=False),
    Column("transport_document", String(64), nullable=False),
    Column("consignment_reference", String(64)),
    Column("credit_tier", String(20), nullable=False),    # the trader's tier when it lodged
    # Two-step declaration: a "summary" filing is released first; its complete filing is due by
    # complete_due_day, and a late one is notified once (overdue_notified_at).
    Column("filing_mode", String(10), nullable=False),
    Column("complete_due_day", Date),
    Column("completed_at", UtcDateTime()),
    Column("overdue_notified_at", UtcDateTime()),
    Column("currency", String(3), nullable=False),
    Column("invoice_total_minor", BigInteger, nullable=False),
    Column("status", String(30), nullable=False),
    Column("version", Integer, nullable=False),
    Column("acceptance_day", Date, nullable=False),
    Column("lane", String(10), nullable=False),
    Column("lane_cleared", Boolean, nullable=False),
    Column("lane_refused", Boolean, nullable=False),
    # Assessment totals in fen (CNY); the per-item figures are in declaration_items.
    Column("customs_value_fen", BigInteger, nullable=False),
    Column("duty_fen", BigInteger, nullable=False),
    Column("consumption_tax_fen", BigInteger, nullable=False),
    Column("vat_fen", BigInteger, nullable=False),
    Column("total_due_fen", BigInteger, nullable=False),
    Column("paid", Boolean, nullable=False),
    # Stage times for the clearance-time statistics (WCO Time Release Study stages).
    Column("lodged_at", UtcDateTime(), nullable=False),
    Column("accepted_at", UtcDateTime(), nullable=False),
    Column("lane_cleared_at", UtcDateTime()),
    Column("tasks_done_at", UtcDateTime()),
    Column("paid_at", UtcDateTime()),
    Column("released_at", UtcDateTime()),
    Column("exited_at", UtcDateTime()),
    Column("cancelled_at", UtcDateTime()),
    Column("cancel_reason", Text),
    # A repeat of the same client reference by the same declarant returns the first result.
    UniqueConstraint("declarant_id", "client_reference", name="uq_declarations_declarant_reference"),
    Index("ix_declarations_trader_status", "trader_id", "status"),
    Index("ix_declarations_status", "status"),
)

declaration_versions = Table(
    "declaration_versions", metadata,
    Column("declaration_id", id_column_type(), ForeignKey("declarations.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("filing", Json(), nullable=False),          # the filing as checked (model.Filing.as_json)
    Column("assessment", Json(), nullable=False),
    Column("reason", Text),                            # why this version (amendment, correction)
    Column("created_at", UtcDateTime(), nullable=False),
    Column("created_by", String(100), nullable=False),
)

declaration_items = Table(
    "declaration_items", metadata,
    Column("declaration_id", id_column_type(), ForeignKey("declarations.id"), primary_key=True),
    Column("line_number", Integer, primary_key=True),
    Column("tariff_code", String(10), nullable=False),
    Column("description", Text, nullable=False),
    Column("origin", String(2)),
    Column("quantity", String(30), nullable=False),       # decimal text, in the line's unit
    Column("unit", String(3), nullable=False),
    Column("net_mass_kg", String(30), nullable=False),
    Column("value_minor", BigInteger, nullable=False),    # in the declaration's currency
    Column("customs_value_fen", BigInteger, nullable=False),
    Column("duty_fen", BigInteger, nullable=False),
    Column("consumption_tax_fen", BigInteger, nullable=False),
    Column("vat_fen", BigInteger, nullable=False),
    Index("ix_declaration_items_code", "tariff_code"),
)

declaration_documents = Table(
    "declaration_documents", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("declaration_id", id_column_type(), ForeignKey("declarations.id"), nullable=False),
    Column("type", String(20), nullable=False),
    Column("filename", String(200), nullable=False),
    Column("content_type", String(50), nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("added_at", UtcDateTime(), nullable=False),
    Column("added_by", String(100), nullable=False),
    Index("ix_declaration_documents_declaration", "declaration_id"),
)

agency_tasks = Table(
    "agency_tasks", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("declaration_id", id_column_type(), ForeignKey("declarations.id"), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("agency_kind", String(20), nullable=False),
    Column("title", Text, nullable=False),
    Column("line_numbers", Json(), nullable=False),
    Column("status", String(25), nullable=False),
    Column("due_at", UtcDateTime(), nullable=False),
    Column("raised_at", UtcDateTime(), nullable=False),
    Column("decided_at", UtcDateTime()),
    Column("decided_by", String(100)),
    Column("reason", Text),
    Index("ix_agency_tasks_queue", "agency_kind", "status", "due_at"),
    Index("ix_agency_tasks_declaration", "declaration_id"),
)

lane_decisions = Table(
    "lane_decisions", metadata,
    Column("declaration_id", id_column_type(), ForeignKey("declarations.id"), primary_key=True),
    Column("lane", String(10), nullable=False),
    Column("seed", BigInteger, nullable=False),
    Column("explanation", Json(), nullable=False),        # the draws, profile by profile
    Column("inputs", Json(), nullable=False),             # facts, profiles and settings used: replayable
    Column("decided_at", UtcDateTime(), nullable=False),
)

control_results = Table(
    "control_results", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("declaration_id", id_column_type(), ForeignKey("declarations.id"), nullable=False),
    Column("kind", String(20), nullable=False),           # inspection | document_check
    Column("conform", Boolean, nullable=False),
    Column("findings", Text, nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    Column("recorded_by", String(100), nullable=False),
    Index("ix_control_results_declaration", "declaration_id"),
)

payments = Table(
    "payments", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("declaration_id", id_column_type(), ForeignKey("declarations.id"), nullable=False),
    Column("kind", String(10), nullable=False),           # payment | guarantee | refund | supplement
    Column("reference", String(64), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    Column("recorded_by", String(100), nullable=False),
    UniqueConstraint("kind", "reference", name="uq_payments_kind_reference"),
)

declaration_counters = Table(
    "declaration_counters", metadata,
    Column("office", String(20), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("last_sequence", BigInteger, nullable=False),
)

lane_profiles = Table(
    "lane_profiles", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("office", String(20), nullable=False),
    Column("definition", Json(), nullable=False),         # selectivity.RuleProfile as a dict
    Column("active", Boolean, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("updated_by", String(100), nullable=False),
)

lane_settings = Table(
    "lane_settings", metadata,
    Column("office", String(20), primary_key=True),
    Column("definition", Json(), nullable=False),         # selectivity.OfficeSettings as a dict
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("updated_by", String(100), nullable=False),
)
