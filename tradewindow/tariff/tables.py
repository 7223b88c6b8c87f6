"""Tariff tables: the HS nomenclature, national lines and their measures over time, trade
agreements, exchange rates.

Rates are stored as decimal text ("0.15", "2.3", "7.1795"): they are not money, and SQLite has no
exact decimal type, so text is the one representation that round-trips exactly on both databases."""

from __future__ import annotations

from sqlalchemy import Column, Date, Index, Integer, String, Table, Text

from tradewindow.platform.db import UtcDateTime, id_column_type, metadata

RATE = 24  # length of a decimal rate as text

hs_nomenclature = Table(
    "hs_nomenclature", metadata,
    Column("code", String(10), primary_key=True),        # "I" for a section, "87", "8703", "870321"
    Column("level", Integer, nullable=False),             # 0 section, 2 chapter, 4 heading, 6 subheading
    Column("parent", String(10)),
    Column("section", String(5)),
    Column("description", Text, nullable=False),
    Column("edition", String(10), nullable=False),        # "HS2022"
    Index("ix_hs_nomenclature_parent", "parent"),
)

tariff_lines = Table(
    "tariff_lines", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("code", String(10), nullable=False, unique=True),
    Column("hs6", String(6), nullable=False),
    Column("unit", String(3), nullable=False),
    Column("description_en", Text, nullable=False),
    Column("description_zh", Text, nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_to", Date),
    Column("source", Text, nullable=False),
    Column("note", Text, nullable=False),
    Index("ix_tariff_lines_hs6", "hs6"),
)

tariff_measures = Table(
    "tariff_measures", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("code", String(10), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("agreement", String(20)),
    Column("origin", String(2)),
    Column("requirement", String(30)),
    Column("ad_valorem", String(RATE), nullable=False),
    Column("specific", String(RATE), nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_to", Date),
    Column("source", Text, nullable=False),
    Column("note", Text, nullable=False),
    Index("ix_tariff_measures_code", "code"),
)

trade_agreements = Table(
    "trade_agreements", metadata,
    Column("code", String(20), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("members", Text, nullable=False),              # as in agreements.csv: "AU JP KR@2022-02-01"
    Column("valid_from", Date, nullable=False),
    Column("valid_to", Date),
    Column("source", Text, nullable=False),
)

exchange_rates = Table(
    "exchange_rates", metadata,
    Column("currency", String(3), primary_key=True),
    Column("valid_from", Date, primary_key=True),
    Column("valid_to", Date),
    Column("rate", String(RATE), nullable=False),         # CNY for one unit of the currency
    Column("source", Text, nullable=False),
)

schedule_imports = Table(
    "schedule_imports", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("kind", String(20), nullable=False),           # schedule | agreements | exchange_rates | hs
    Column("rows", Integer, nullable=False),
    Column("imported_by", String(100), nullable=False),
    Column("imported_at", UtcDateTime(), nullable=False),
)
