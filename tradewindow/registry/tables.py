"""Registry tables."""

from __future__ import annotations

from sqlalchemy import (
                        Boolean,
                        Column,
                        Date,
                        ForeignKey,
                        Index,
                        Integer,
                        String,
                        Table,
                        Text,
                        UniqueConstraint,
)

from tradewindow.platform.db import Json, UtcDateTime, id_column_type, metadata

enterprises = Table(
    "enterprises", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("uscc", String(18), nullable=False, unique=True),
    Column("name_zh", String(200), nullable=False),
    Column("name_en", String(200), nullable=False),
    Column("address", String(500), nullable=False),
    Column("sector", String(20), nullable=False),
    Column("business_scope", Text, nullable=False),
    Column("kinds", Json(), nullable=False),            # ["trader", "broker", ...]
    Column("credit_tier", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("registered_at", UtcDateTime(), nullable=False),
    Column("withdrawn_at", UtcDateTime()),
    Column("version", Integer, nullable=False),
)

agencies = Table(
    "agencies", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("code", String(20), nullable=False, unique=True),   # customs office code, e.g. 8000
    Column("kind", String(20), nullable=False),
    Column("name_en", String(200), nullable=False),
    Column("name_zh", String(200), nullable=False),
    Column("parent_id", id_column_type(), ForeignKey("agencies.id")),
    Column("location", String(10)),                            # UN/LOCODE
)

users = Table(
    "users", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("enterprise_id", id_column_type(), ForeignKey("enterprises.id")),
    Column("agency_id", id_column_type(), ForeignKey("agencies.id")),
    Column("password_hash", String(200), nullable=False),
    # Demo accounts (password "demo") work only while the server runs in demo mode.
    Column("is_demo", Boolean, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("failed_logins", Integer, nullable=False),
    Column("locked_until", UtcDateTime()),
    Column("created_at", UtcDateTime(), nullable=False),
)

credentials = Table(
    "credentials", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("user_id", id_column_type(), ForeignKey("users.id"), nullable=False),
    Column("kind", String(10), nullable=False),            # token | key | session
    Column("name", String(100), nullable=False),
    Column("prefix", String(20), nullable=False),          # first characters, to recognise a key
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime()),
    Column("revoked_at", UtcDateTime()),
    Column("last_used_at", UtcDateTime()),
    Index("ix_credentials_user", "user_id", "kind"),
)

broker_authorisations = Table(
    "broker_authorisations", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("trader_id", id_column_type(), ForeignKey("enterprises.id"), nullable=False),
    Column("broker_id", id_column_type(), ForeignKey("enterprises.id"), nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_to", Date),
    Column("revoked_at", UtcDateTime()),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ix_broker_authorisations_pair", "trader_id", "broker_id"),
)

licences = Table(
    "licences", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("enterprise_id", id_column_type(), ForeignKey("enterprises.id"), nullable=False),
    Column("licence_type", String(40), nullable=False),
    Column("number", String(64), nullable=False),
    Column("issuer", String(200), nullable=False),
    Column("status", String(10), nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_to", Date),
    Column("scope", Json()),              # e.g. {"tariff_codes": [...], "quantity": "..."}
    Column("decision_reason", Text),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("licence_type", "number", name="uq_licences_type_number"),
)

startup_filings = Table(
    "startup_filings", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("client_reference", String(64), nullable=False, unique=True),
    Column("enterprise_id", id_column_type(), ForeignKey("enterprises.id"), nullable=False),
    Column("filed_by", id_column_type(), nullable=False),
    Column("filed_at", UtcDateTime(), nullable=False),
    Column("completed_at", UtcDateTime()),     # when the last licence applied for was decided
)
