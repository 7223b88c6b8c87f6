"""Alembic migrations for every context's tables; they run on SQLite and PostgreSQL alike.

`upgrade(url)` is what `tradewindow db upgrade`, the demo and the tests call."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

HERE = Path(__file__).resolve().parent


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Bring the database to `revision` ("heads": every branch; contexts developed side by side
    branch from the same parent and are merged by a later revision), on the given engine's connection (so SQLite pragmas and
    in-memory databases are the engine's own)."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at ("a+b" while branches developed side by side are unmerged)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
    return "+".join(sorted(heads)) or None


def all_tables_metadata():
    """The MetaData with every context's tables registered on it."""
    import tradewindow.bonded.tables  # noqa: F401
    import tradewindow.customs.tables  # noqa: F401
    import tradewindow.ecommerce.tables  # noqa: F401
    import tradewindow.logistics.tables  # noqa: F401
    import tradewindow.notifications.tables  # noqa: F401
    import tradewindow.platform.tables  # noqa: F401
    import tradewindow.registry.tables  # noqa: F401
    import tradewindow.tariff.tables  # noqa: F401
    import tradewindow.titles.tables  # noqa: F401
    from tradewindow.platform.db import metadata

    return metadata
