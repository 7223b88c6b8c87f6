"""`tradewindow epcis capture FILE`: NDJSON of bare events (captured in batches) or of EPCIS
documents, or one pretty-printed document, with a progress bar; refused batches are named by their
lines and the exit status is 1."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.conftest import USCC
from tests.logistics.conftest import CONTAINER, WAGON, document, event, train
from tradewindow.cli import app
from tradewindow.logistics import service
from tradewindow.platform.settings import get_settings

runner = CliRunner()


@pytest.fixture
def cli(db, carriers, epcis_schema, monkeypatch):
    monkeypatch.setenv("TRADEWINDOW_DATABASE_URL", db.url.render_as_string(hide_password=False))
    get_settings.cache_clear()

    def run(*args: str):
        return runner.invoke(app, list(args))
    return run


def events_seen(world) -> list[dict]:
    found = service.query_events(world.uow, world["customs_officer"], service.EventQuery(per_page=1000))
    return found["epcisBody"]["queryResults"]["resultsBody"]["eventList"]


def test_bulk_capture_of_ndjson_events_in_batches_and_documents(cli, carriers, tmp_path):
    service.register_consignment(carriers.uow, carriers["carrier"], train())
    lines = [json.dumps(event(i, [WAGON], "CNTNR")) for i in range(7)]
    lines.insert(3, "")
    lines.append(json.dumps(document(event(20, [CONTAINER], "CNAKU"))))
    path = tmp_path / "events.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = cli("epcis", "capture", str(path), "--batch-size", "3", "--enterprise", USCC["carrier"])
    assert result.exit_code == 0, result.output
    assert "8 events: 8 captured, 0 repeats, 0 refused." in result.stdout
    assert len(events_seen(carriers)) == 8
    # Captured as the carrier: the trader's consignment sees them in its timeline.
    again = cli("epcis", "capture", str(path))
    assert again.exit_code == 0 and "0 captured, 8 repeats" in again.stdout


def test_a_pretty_printed_document_is_one_capture(cli, carriers, tmp_path):
    path = tmp_path / "doc.jsonld"
    path.write_text(json.dumps(document(event(0, [WAGON]), event(1, [WAGON])), indent=2), encoding="utf-8")
    result = cli("epcis", "capture", str(path))
    assert result.exit_code == 0, result.output
    assert "2 events: 2 captured" in result.stdout


def test_refused_lines_are_named_and_the_rest_is_captured(cli, carriers, tmp_path):
    bad = event(1, [WAGON])
    bad["epcList"] = "not a list"
    path = tmp_path / "events.ndjson"
    path.write_text("\n".join([json.dumps(event(0, [WAGON])), "{broken", json.dumps(bad),
                               json.dumps(event(2, [WAGON]))]) + "\n", encoding="utf-8")
    result = cli("epcis", "capture", str(path), "--batch-size", "10")
    assert result.exit_code == 1
    assert "line 2: not JSON" in result.output
    assert "line 3: epcisBody.eventList[0].epcList schema_violation" in result.output
    assert "1 events: 1 captured" in result.stdout
    assert len(events_seen(carriers)) == 1


def test_an_unknown_enterprise_is_refused(cli, tmp_path):
    path = tmp_path / "e.ndjson"
    path.write_text(json.dumps(event(0, [WAGON])) + "\n", encoding="utf-8")
    result = cli("epcis", "capture", str(path), "--enterprise", "91500000000000000X")
    assert result.exit_code == 1


def test_check_dwell(cli, carriers):
    assert cli("epcis", "check-dwell").stdout.strip() == "0 dwell alerts raised."
