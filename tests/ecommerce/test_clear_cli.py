"""`tradewindow cbec generate` and `tradewindow cbec clear` as an operator runs them, on a fresh
SQLite file named by TRADEWINDOW_DATABASE_URL."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tradewindow.cli import app
from tradewindow.platform.auth import Actor, Role
from tradewindow.platform.db import UnitOfWork, make_engine
from tradewindow.platform.settings import get_settings
from tradewindow.tariff import service as tariff

runner = CliRunner()


def test_generate_then_clear_prints_and_stores_the_summary(tmp_path: Path, monkeypatch):
    url = f"sqlite:///{tmp_path}/tw.db"
    monkeypatch.setenv("TRADEWINDOW_DATABASE_URL", url)
    get_settings.cache_clear()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    engine = make_engine(url)
    tariff.load_demo_schedule(UnitOfWork(engine), Actor(user_id=None, username="t", role=Role.CUSTOMS))
    generated = runner.invoke(app, ["cbec", "generate", "--parcels", "300", "--seed", "4",
                                    "--out", str(tmp_path / "in")])
    assert generated.exit_code == 0, generated.output
    assert json.loads(generated.stdout)["parcels"] == 300
    folder = tmp_path / "in"
    cleared = runner.invoke(app, ["cbec", "clear", "--orders", str(folder / "orders.ndjson"),
                                  "--payments", str(folder / "payments.ndjson"),
                                  "--waybills", str(folder / "waybills.ndjson"),
                                  "--out", str(tmp_path / "results.ndjson"), "--inspection-rate", "0"])
    assert cleared.exit_code == 0, cleared.output
    summary = json.loads((tmp_path / "results.ndjson.summary.json").read_text(encoding="utf-8"))
    assert summary["parcels_decided"] == 300 and summary["decisions"]["inspect"] == 0
    assert summary["parcels_per_second"] > 0
    assert len((tmp_path / "results.ndjson").read_text(encoding="utf-8").splitlines()) == 300
    assert '"parcels_decided": 300' in cleared.stdout
    engine.dispose()
    get_settings.cache_clear()


def test_clear_names_every_missing_file_and_stores_nothing(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TRADEWINDOW_DATABASE_URL", f"sqlite:///{tmp_path}/tw.db")
    get_settings.cache_clear()
    (tmp_path / "payments.ndjson").write_text("", encoding="utf-8")
    cleared = runner.invoke(app, ["cbec", "clear", "--orders", str(tmp_path / "orders.ndjson"),
                                  "--payments", str(tmp_path / "payments.ndjson"),
                                  "--waybills", str(tmp_path / "waybills.ndjson"), "--out", str(tmp_path / "r.ndjson")])
    assert cleared.exit_code == 2
    assert cleared.exception is None or isinstance(cleared.exception, SystemExit)
    message = " ".join(cleared.output.split())
    assert "--orders" in message and "--waybills" in message and "--payments" not in message
    assert not (tmp_path / "r.ndjson").exists()


def test_timing_appends_each_pass_wall_and_cpu_seconds_to_the_file_it_names(tmp_path: Path, monkeypatch):
    url = f"sqlite:///{tmp_path}/tw.db"
    monkeypatch.setenv("TRADEWINDOW_DATABASE_URL", url)
    get_settings.cache_clear()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(app, ["cbec", "generate", "--parcels", "30", "--out", str(tmp_path / "in")]).exit_code == 0
    timing = tmp_path / "timing.ndjson"
    timing.write_text('{"step": "an earlier run"}\n', encoding="utf-8")
    folder = tmp_path / "in"
    cleared = runner.invoke(app, ["cbec", "clear", "--orders", str(folder / "orders.ndjson"),
                                  "--payments", str(folder / "payments.ndjson"),
                                  "--waybills", str(folder / "waybills.ndjson"),
                                  "--out", str(tmp_path / "results.ndjson"), "--timing", str(timing)])
    assert cleared.exit_code == 0, cleared.output
    steps = [json.loads(line) for line in timing.read_text(encoding="utf-8").splitlines()]
    assert steps[0] == {"step": "an earlier run"}
    passes = [s["step"] for s in steps[1:] if s["step"].startswith("pass") or s["step"] == "numbers used twice"]
    assert passes == ["pass 1", "numbers used twice", "pass 2", "pass 3"]
    assert all(s["end"] >= s["start"] and s["cpu"] >= 0 and s["pid"] for s in steps[1:])
    get_settings.cache_clear()


def test_clear_help_explains_timing():
    shown = " ".join(runner.invoke(app, ["cbec", "clear", "--help"]).output.replace("│", "").split())
    assert "append each pass's wall and cpu seconds per process to file" in shown.lower()
