"""Settings from environment variables prefixed TRADEWINDOW_ (documented in the README)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRADEWINDOW_", extra="ignore")

    # SQLite file under ./var by default; postgresql+psycopg://user:pass@host/db for a real deployment.
    database_url: str = "sqlite:///var/tradewindow.db"
    # Demo mode allows the demo accounts' password "demo"; a real deployment refuses it.
    demo_mode: bool = False
    # Business dates (acceptance day, working days, a buyer's calendar year) are in this zone.
    time_zone: str = "Asia/Shanghai"
    # Requests with a larger body are refused with 413 before they are read.
    max_body_bytes: int = 10 * 1024 * 1024
    # Where tests and importers find the public reference data (../shared/data in CI).
    reference_data: Path = Path("../shared/data")
    # The GS1 EPCIS 2.0 JSON Schema (EPCIS-JSON-Schema.json as GS1 publishes it) that EPCIS capture
    # validates against. Not shipped with Trade Window: GS1's licence file grants no right to
    # redistribute it (tradewindow/logistics/schema.py); unset, EPCIS capture answers 503.
    epcis_schema: Path | None = None
    # Where the published heads of the bills of lading' hash chains are also appended (ideally
    # storage a database administrator cannot rewrite); verification checks chains against it.
    title_checkpoint_file: Path | None = None
    # Login safety: this many failures in a row lock the account for lockout_minutes.
    max_failed_logins: int = 5
    lockout_minutes: int = 15
    # Lifetime of a token from POST /api/v1/auth/token and of a web session.
    token_hours: int = 12
    # Cookies are marked Secure when the site is served over HTTPS.
    secure_cookies: bool = False
    # Job queue: "database" (embedded default) or "nats" (NATS JetStream at nats_url, for
    # deployments beyond one machine; also carries the cross-border e-commerce stream).
    job_queue: Literal["database", "nats"] = "database"
    nats_url: str = "nats://127.0.0.1:4222"
    # How long a worker may hold a JetStream message before it is redelivered (the lease).
    nats_ack_wait_seconds: float = 300
    # A failed job or stream message is tried again after 2, 4, 8, ... times this (at most an hour).
    retry_backoff_seconds: float = 1
    # The cross-border e-commerce stream is split by buyer into this many subjects (partitions).
    cbec_stream_partitions: int = 8
    worker_poll_seconds: float = 0.5
    # The master key that seals secrets the platform must read back (custodial signing keys, webhook
    # secrets; platform/vault.py). Created on first use; keep it out of database backups, and give
    # every process of one installation the same file.
    secret_key_file: Path = Path("var/secret.key")
    # Webhooks may not target loopback, private or link-local addresses (the platform's own
    # network) unless this is set: for tests and single-machine set-ups only.
    webhook_private_addresses: bool = False


@lru_cache
def get_settings() -> Settings:
    return Settings()
