"""Shared fixtures. Every test that touches the database runs twice: on SQLite and on a real
PostgreSQL server that the suite starts for itself (tests/support/postgres.py).

Each test starts from a migrated database holding only the reference data (code lists, calendar)
and gets persona fixtures — `zone`, `admin`, `trader`, `other_trader`, `broker`,
`customs_officer`, ... — created through the public services, as users would create them."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, text

os.environ.pop("TRADEWINDOW_DEMO_MODE", None)
os.environ.setdefault("TRADEWINDOW_DATABASE_URL", "sqlite:///:memory:")
# One master key for the whole run (and the processes tests start), never the checkout's own.
os.environ.setdefault("TRADEWINDOW_SECRET_KEY_FILE",
                      os.path.join(tempfile.mkdtemp(prefix="tradewindow-test-key-"), "secret.key"))

from tests.support.browser import browser, page  # noqa: E402,F401
from tests.support.nats import nats_server  # noqa: E402,F401
from tests.support.postgres import postgres_cluster  # noqa: E402,F401
from tradewindow.migrations import all_tables_metadata, upgrade  # noqa: E402
from tradewindow.platform import auth, caches  # noqa: E402
from tradewindow.platform.auth import SYSTEM, Actor, Role  # noqa: E402
from tradewindow.platform.db import UnitOfWork, make_engine  # noqa: E402
from tradewindow.platform.settings import Settings, get_settings  # noqa: E402
from tradewindow.registry import service as registry  # noqa: E402
from tradewindow.registry.model import EnterpriseInput  # noqa: E402

# Cheap password hashing for the suite's many persona logins (tests of the hashing itself set
# their own cost); production keeps auth.SCRYPT_N's default.
auth.SCRYPT_N = 2**4

def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test marked `postgres` shows what only a database server can (row locks under real
    concurrency, a transaction committing late): its SQLite variant is not collected at all,
    rather than collected and skipped. A job-queue contract test on NATS runs on one engine only."""
    keep, drop = [], []
    for item in items:
        variant = getattr(item, "callspec", None)
        on_sqlite = variant is not None and variant.params.get("engine") == "sqlite"
        # A test of the JetStream job queue does not depend on the database engine: once is enough.
        nats_twin = variant is not None and variant.params.get("queue") == "nats" and not on_sqlite
        (drop if (item.get_closest_marker("postgres") and on_sqlite) or nats_twin else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# Tables that hold reference data loaded by migrations: kept between tests.
REFERENCE_TABLES = {"code_list_entries", "calendar_days", "alembic_version"}
PASSWORD = "correct horse battery"


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    if request.param == "sqlite":
        path = Path(tmp_path_factory.mktemp("sqlite")) / "test.db"
        url = f"sqlite:///{path}"
    else:
        cluster = request.getfixturevalue("postgres_cluster")
        url = cluster.create_database("tradewindow_test")
    engine = make_engine(url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_at(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], Engine]]:
    """A database of the test's own migrated up to an old revision, on SQLite and on PostgreSQL:
    `old = engine_at("0013")`, for tests that a later migration moves existing data."""
    made: list[Engine] = []

    def at(revision: str) -> Engine:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / f'at_{revision}.db'}"
        else:
            url = request.getfixturevalue("postgres_cluster").create_database(f"at_{revision}")
        made.append(make_engine(url))
        upgrade(made[-1], revision)
        return made[-1]

    yield at
    for engine in made:
        engine.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Engine]:
    """The engine, emptied of everything but reference data after the test."""
    yield engine
    _empty(engine)


def _empty(engine: Engine) -> None:
    tables = [t for t in reversed(all_tables_metadata().sorted_tables) if t.name not in REFERENCE_TABLES]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t.name}"' for t in tables) + " CASCADE"))
        else:
            for table in tables:
                conn.execute(delete(table))
        conn.execute(text("DELETE FROM calendar_days WHERE updated_by <> 'migration'"))
    # The services' per-process caches must not carry one test's data into the next.
    caches.clear_all()


@pytest.fixture
def uow(db: Engine) -> UnitOfWork:
    return UnitOfWork(db)


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def demo_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEWINDOW_DEMO_MODE", "true")
    get_settings.cache_clear()


# --- personas ------------------------------------------------------------------------------------

# Valid, made-up credit codes (check characters computed with python-stdnum).
USCC = {
    "trader": "91500115GG37HDHFEA",
    "other_trader": "915001302393E0FA6K",
    "broker": "91500169HF3DGFCG83",
    "bank": "915001869HGFCD698Y",
    "carrier": "91500169FGG0741G3A",
    "spare": "91500162E020EH267X",
    "spare2": "915001191H8B40AF4U",
    "spare3": "91500183F4G92D5498",
}


@dataclass
class World:
    uow: UnitOfWork
    actors: dict[str, Actor]
    enterprises: dict[str, dict]

    def __getitem__(self, name: str) -> Actor:
        return self.actors[name]


def enterprise_input(uscc: str, name: str = "Test Trading Co., Ltd.", kinds: tuple[str, ...] = ("trader",),
                     sector: str = "xiyong", credit_tier: str = "general") -> EnterpriseInput:
    return EnterpriseInput(uscc=uscc, name_zh="测试贸易有限公司", name_en=name, address="Chongqing",
                           sector=sector, business_scope="General trade", kinds=kinds,
                           credit_tier=credit_tier)


@pytest.fixture
def world(uow: UnitOfWork) -> World:
    """Agencies, enterprises and one user per persona, made through the services."""
    zone_agency = registry.create_agency(uow, SYSTEM, "CQ-FTZ", "zone", "Zone Administration", "管委会")
    registry.create_agency(uow, SYSTEM, "8000", "customs", "Chongqing Customs", "重庆海关")
    registry.create_agency(uow, SYSTEM, "CQ-QUA", "quarantine", "Quarantine", "检验检疫")
    registry.create_agency(uow, SYSTEM, "CQ-COM", "licensing", "Commerce Commission", "商务委")
    loader = Actor(user_id=None, username="fixture", role=Role.ZONE, agency_id=zone_agency["id"])
    enterprises = {
        "trader": registry.register_enterprise(uow, loader, enterprise_input(USCC["trader"], "Yangtze Auto Import")),
        "other_trader": registry.register_enterprise(uow, loader, enterprise_input(USCC["other_trader"], "Other Trader")),
        "broker": registry.register_enterprise(uow, loader, enterprise_input(USCC["broker"], "Shancheng Brokerage", ("broker",))),
        "bank": registry.register_enterprise(uow, loader, enterprise_input(USCC["bank"], "Changjiang Bank", ("bank",))),
    }
    people = [
        ("admin", Role.ADMIN, None, None), ("zone", Role.ZONE, None, "CQ-FTZ"),
        ("trader", Role.TRADER, USCC["trader"], None), ("other_trader", Role.TRADER, USCC["other_trader"], None),
        ("broker", Role.BROKER, USCC["broker"], None), ("bank", Role.BANK, USCC["bank"], None),
        ("customs_officer", Role.CUSTOMS, None, "8000"), ("quarantine_officer", Role.QUARANTINE, None, "CQ-QUA"),
        ("licensing_officer", Role.LICENSING, None, "CQ-COM"),
    ]
    actors = {}
    for username, role, uscc, agency in people:
        user = registry.create_user(uow, SYSTEM, username, PASSWORD, role.value, username,
                                    enterprise_uscc=uscc, agency_code=agency)
        actors[username] = Actor(user_id=user["id"], username=username, role=role,
                                 enterprise_id=user["enterprise_id"], agency_id=user["agency_id"])
    return World(uow, actors, enterprises)


@pytest.fixture
def authorised_broker(world: World) -> dict:
    return registry.authorise_broker(world.uow, world["trader"], USCC["broker"], date(2020, 1, 1))


# --- the API -------------------------------------------------------------------------------------

@pytest.fixture
def app(db: Engine):
    from tradewindow.web.app import create_app

    return create_app(Settings(database_url=str(db.url)), db)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def bearer(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/api/v1/auth/token", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
def as_user(client: TestClient, world: World):
    """`as_user("trader")` -> headers with a bearer token of that persona."""
    cache: dict[str, dict[str, str]] = {}

    def headers(username: str) -> dict[str, str]:
        if username not in cache:
            cache[username] = bearer(client, username)
        return cache[username]

    return headers
