"""`tradewindow titles publish-head` and `tradewindow titles verify`, on the test database."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from tests.titles.conftest import bill
from tradewindow.cli import app
from tradewindow.platform.settings import get_settings
from tradewindow.titles import service as titles

runner = CliRunner()


@pytest.fixture
def on_test_database(db, monkeypatch):
    monkeypatch.setenv("TRADEWINDOW_DATABASE_URL", db.url.render_as_string(hide_password=False))
    get_settings.cache_clear()


def test_the_operator_publishes_the_heads_and_verifies_every_chain(titles_world, on_test_database, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setenv(titles.CHECKPOINT_FILE_ENV, str(tmp_path / "heads.jsonl"))
    get_settings.cache_clear()
    titles.issue_bill(titles_world.uow, titles_world["carrier"], bill())
    published = runner.invoke(app, ["titles", "publish-head"])
    assert published.exit_code == 0 and "(1 bills, root" in published.output and "): published" in published.output
    assert (tmp_path / "heads.jsonl").read_text().count("\n") == 1
    again = runner.invoke(app, ["titles", "publish-head"])
    assert "unchanged" in again.output
    verified = runner.invoke(app, ["titles", "verify"])
    assert verified.exit_code == 0 and "1 bills, 0 broken; 1 checkpoints" in " ".join(verified.output.split())

    with titles_world.uow.engine.begin() as conn:
        conn.execute(text("UPDATE title_records SET at = at"))          # harmless
        conn.execute(text("UPDATE bills_of_lading SET goods_description = 'Sand'"))
    broken = runner.invoke(app, ["titles", "verify"])
    assert broken.exit_code == 1 and "document_mismatch" in " ".join(broken.output.split())
