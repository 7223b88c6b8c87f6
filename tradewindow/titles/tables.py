"""Titles tables: signing keys, bills of lading, their records (the hash chain), and the published
checkpoints of every chain's head.

`bills_of_lading` keeps the current holder, pledgee, status and head for queries; the records are
the truth, and verification checks that the two agree."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from tradewindow.platform.db import Json, UtcDateTime, id_column_type, metadata

signing_keys = Table(
    "signing_keys", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("enterprise_id", id_column_type(), nullable=False),
    Column("fingerprint", String(64), nullable=False, unique=True),    # SHA-256 of the raw public key
    Column("public_key", String(100), nullable=False),                 # base64 of the 32 raw bytes
    # Custodial signing only: the private key's 32 raw bytes sealed under the installation's master
    # key (platform/vault.py), which is kept outside the database: a copy of the database alone
    # cannot sign for the party.
    Column("private_key", String(100)),
    Column("custodial", Boolean, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("retired_at", UtcDateTime()),                               # superseded by a newer key
    Index("ix_signing_keys_enterprise", "enterprise_id", "retired_at"),
)

bills_of_lading = Table(
    "bills_of_lading", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("bol_number", String(35), nullable=False, unique=True),
    # model.Kind: railway_bill | sea_bill (the same title rules; the particulars below differ)
    Column("kind", String(20), nullable=False, server_default="railway_bill"),
    Column("issuer_id", id_column_type(), nullable=False),
    Column("shipper_id", id_column_type(), nullable=False),
    Column("consignee_id", id_column_type()),                          # null: "to order"
    Column("goods_description", Text, nullable=False),
    Column("packages", Integer, nullable=False),
    Column("gross_mass_kg", String(30), nullable=False),               # decimal text, model.decimal_text
    Column("containers", Json(), nullable=False),                      # ISO 6346 numbers
    Column("place_of_receipt", String(5), nullable=False),             # UN/LOCODE
    Column("place_of_delivery", String(5), nullable=False),
    Column("consignment_reference", String(64)),
    # A sea bill's vessel, voyage and ports (UN/LOCODE); null on a railway bill.
    Column("vessel", String(35)),
    Column("voyage", String(17)),
    Column("port_of_loading", String(5)),
    Column("port_of_discharge", String(5)),
    Column("document_hash", String(64), nullable=False),
    Column("issued_at", UtcDateTime(), nullable=False),
    # Derived from the records, kept for queries (who holds what).
    Column("status", String(20), nullable=False),
    Column("holder_id", id_column_type(), nullable=False),
    Column("pledgee_id", id_column_type()),
    Column("sequence", Integer, nullable=False),
    Column("head_hash", String(64), nullable=False),
    Index("ix_bills_of_lading_holder", "holder_id"),
    Index("ix_bills_of_lading_issuer", "issuer_id"),
    Index("ix_bills_of_lading_kind", "kind", "status"),
)

title_records = Table(
    "title_records", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("bill_id", id_column_type(), ForeignKey("bills_of_lading.id"), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("action", String(20), nullable=False),
    Column("actor_id", id_column_type(), nullable=False),
    Column("from_holder_id", id_column_type()),
    Column("to_holder_id", id_column_type(), nullable=False),
    Column("pledgee_id", id_column_type()),
    Column("at", UtcDateTime(), nullable=False),
    Column("previous_hash", String(64), nullable=False),
    Column("document_hash", String(64), nullable=False),
    Column("key_fingerprint", String(64), nullable=False),
    Column("signature", String(100), nullable=False),
    Column("hash", String(64), nullable=False),
    # Two writers appending to one chain: one wins, the other's insert fails (409).
    UniqueConstraint("bill_id", "sequence", name="uq_title_records_bill_sequence"),
    Index("ix_title_records_to_holder", "to_holder_id"),
    Index("ix_title_records_pledgee", "pledgee_id"),
)

title_checkpoints = Table(
    "title_checkpoints", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("published_at", UtcDateTime(), nullable=False),
    Column("titles", Integer, nullable=False),
    Column("root", String(64), nullable=False),             # model.heads_root of the heads below
    Column("previous_hash", String(64), nullable=False),    # the checkpoint before (a chain too)
    Column("hash", String(64), nullable=False, unique=True),
    Column("published_by", String(100), nullable=False),
)

title_heads = Table(
    "title_heads", metadata,
    Column("checkpoint_id", id_column_type(), ForeignKey("title_checkpoints.id"), primary_key=True),
    Column("bill_id", id_column_type(), primary_key=True),
    Column("bol_number", String(35), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("head_hash", String(64), nullable=False),
    Index("ix_title_heads_bill", "bill_id"),
)
