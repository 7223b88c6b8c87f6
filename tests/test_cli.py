"""The `tradewindow` command, on a fresh SQLite file named by TRADEWINDOW_DATABASE_URL: migrations,
users, the enterprise list, the working-day calendar. Errors are the API's JSON shape on stderr, with
exit status 1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import PASSWORD, USCC, enterprise_input
from tradewindow.cli import app
from tradewindow.platform.auth import Actor, Role
from tradewindow.platform.db import UnitOfWork, make_engine
from tradewindow.platform.settings import get_settings
from tradewindow.registry import service as registry

runner = CliRunner()


def tradewindow(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A SQLite file that does not exist yet, in a folder that does not exist yet."""
    url = f"sqlite:///{tmp_path}/var/tradewindow.db"
    monkeypatch.setenv("TRADEWINDOW_DATABASE_URL", url)
    get_settings.cache_clear()
    return url


@pytest.fixture
def migrated(database_url: str) -> Iterator[UnitOfWork]:
    result = tradewindow("db", "upgrade")
    assert result.exit_code == 0, result.output
    engine = make_engine(database_url)
    yield UnitOfWork(engine)
    engine.dispose()


def test_db_upgrade_creates_a_fresh_sqlite_database_and_can_run_again(database_url, tmp_path):
    result = tradewindow("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "Database at revision" in result.stdout
    assert (tmp_path / "var" / "tradewindow.db").exists()
    again = tradewindow("db", "upgrade")
    assert again.exit_code == 0
    assert again.stdout.split("revision")[1] == result.stdout.split("revision")[1]


def test_users_create_makes_a_user_who_can_log_in(migrated):
    result = tradewindow("users", "create", "operator", "admin", "--password", PASSWORD)
    assert result.exit_code == 0, result.output
    assert "Created user operator (admin)" in result.stdout
    actor, _token = registry.log_in(migrated, "operator", PASSWORD)
    assert actor.role == Role.ADMIN


def test_users_create_reports_every_problem_as_json_on_stderr_with_exit_1(migrated):
    result = tradewindow("users", "create", "bad name", "trader", "--password", "short",
                         "--enterprise", USCC["trader"])
    assert result.exit_code == 1
    assert result.stdout == ""
    errors = json.loads(result.stderr)["errors"]
    assert {(e["path"], e["code"]) for e in errors} == {
        ("username", "invalid_username"), ("password", "password_too_short"),
        ("enterprise_uscc", "unknown_enterprise")}
    assert all(e["message"] for e in errors)


def test_users_create_refuses_a_taken_username(migrated):
    tradewindow("users", "create", "operator", "admin", "--password", PASSWORD)
    result = tradewindow("users", "create", "operator", "admin", "--password", PASSWORD)
    assert result.exit_code == 1
    assert json.loads(result.stderr)["errors"][0]["code"] == "duplicate"


def test_users_create_an_enterprise_user(migrated):
    zone = Actor(user_id=None, username="test", role=Role.ZONE)
    registry.register_enterprise(migrated, zone, enterprise_input(USCC["trader"], "Yangtze Auto Import"))
    result = tradewindow("users", "create", "li.wei", "trader", "--password", PASSWORD,
                         "--enterprise", USCC["trader"], "--display-name", "Li Wei")
    assert result.exit_code == 0, result.output
    actor, _ = registry.log_in(migrated, "li.wei", PASSWORD)
    assert actor.enterprise_id is not None


def test_users_reset_password(migrated):
    tradewindow("users", "create", "operator", "admin", "--password", PASSWORD)
    result = tradewindow("users", "reset-password", "operator", "--password", "a new long password")
    assert result.exit_code == 0, result.output
    registry.log_in(migrated, "operator", "a new long password")
    unknown = tradewindow("users", "reset-password", "nobody", "--password", "a new long password")
    assert unknown.exit_code == 1


def test_enterprises_list_json(migrated):
    assert json.loads(tradewindow("enterprises", "list", "--json").stdout) == []
    zone = Actor(user_id=None, username="test", role=Role.ZONE)
    registry.register_enterprise(migrated, zone, enterprise_input(USCC["trader"], "Yangtze Auto Import"))
    registry.register_enterprise(migrated, zone, enterprise_input(USCC["broker"], "Shancheng Brokerage",
                                                                  ("broker",), sector="yubei"))
    result = tradewindow("enterprises", "list", "--json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [(e["uscc"], e["name_en"], e["name_zh"]) for e in listed] == [
        (USCC["broker"], "Shancheng Brokerage", "测试贸易有限公司"),
        (USCC["trader"], "Yangtze Auto Import", "测试贸易有限公司")]
    filtered = json.loads(tradewindow("enterprises", "list", "--json", "--sector", "yubei").stdout)
    assert [e["uscc"] for e in filtered] == [USCC["broker"]]
    searched = json.loads(tradewindow("enterprises", "list", "--json", "--q", "Yangtze").stdout)
    assert [e["uscc"] for e in searched] == [USCC["trader"]]


def test_enterprises_list_as_a_table(migrated):
    zone = Actor(user_id=None, username="test", role=Role.ZONE)
    registry.register_enterprise(migrated, zone, enterprise_input(USCC["trader"], "Yangtze Auto Import"))
    result = tradewindow("enterprises", "list")
    assert result.exit_code == 0, result.output
    assert USCC["trader"] in result.stdout and "Enterprises (1)" in result.stdout


@pytest.mark.parametrize(("start", "end", "days"), [
    ("2025-09-30", "2025-10-10", "2"),     # 1-8 October are the National Day holidays
    ("2025-10-10", "2025-10-13", "2"),     # Saturday 11 October is a make-up working day
    ("2025-06-02", "2025-06-09", "5"),     # an ordinary week
])
def test_calendar_working_days(migrated, start, end, days):
    result = tradewindow("calendar", "working-days", start, end)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == days
