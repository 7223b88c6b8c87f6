"""`tradewindow titles keygen|register-key|issue|endorse|pledge|release|take-over|surrender|void
--key KEY`: a party keeps its Ed25519 key in a local file and acts on bills of lading through a
running server over HTTP with an API key; the private key never leaves its machine."""

from __future__ import annotations

import json
import socket
import stat
import threading
import time

import pytest
import uvicorn
from typer.testing import CliRunner

from tests.conftest import USCC
from tests.titles.conftest import bill
from tradewindow.cli import app
from tradewindow.platform.settings import Settings
from tradewindow.registry import service as registry
from tradewindow.titles import model
from tradewindow.titles import service as titles

runner = CliRunner()
SEA = "COSU6281734011"


@pytest.fixture
def server(db):
    """The web app served by uvicorn on a free local port, on the test database."""
    from tradewindow.web.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    served = uvicorn.Server(uvicorn.Config(create_app(Settings(database_url=str(db.url)), db), host="127.0.0.1",
                                           port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=served.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not served.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert served.started
    yield f"http://127.0.0.1:{port}"
    served.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def party(titles_world, server, tmp_path):
    """`party("trader")` -> the CLI arguments of that persona: its new key file (registered through
    the CLI) and an API key."""
    def make(persona: str) -> list[str]:
        key = tmp_path / f"{persona}.key"
        made = runner.invoke(app, ["titles", "keygen", "--out", str(key)])
        assert made.exit_code == 0, made.output
        secret = registry.create_api_key(titles_world.uow, titles_world[persona], "cli")["secret"]
        options = ["--key", str(key), "--url", server, "--api-key", secret]
        registered = runner.invoke(app, ["titles", "register-key", *options])
        assert registered.exit_code == 0, registered.output
        assert json.loads(registered.stdout)["custodial"] is False
        return options

    return make


def cli(*args: str):
    return runner.invoke(app, ["titles", *args])


def test_keygen_writes_a_private_key_only_its_owner_reads_and_prints_the_public_key(tmp_path):
    key = tmp_path / "carrier.key"
    made = cli("keygen", "--out", str(key))
    assert made.exit_code == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    raw = model.parse_private_key_pem(key.read_text())
    assert model.parse_public_key(made.stdout) == model.public_key_of(raw)
    assert model.fingerprint(model.public_key_of(raw)) in made.stderr
    again = cli("keygen", "--out", str(key))
    assert again.exit_code == 1 and model.parse_private_key_pem(key.read_text()) == raw   # never overwritten


def test_a_bills_whole_life_signed_with_local_key_files_over_http(titles_world, party, tmp_path):
    w = titles_world
    carrier, trader, lender = party("carrier"), party("trader"), party("other_bank")
    particulars = tmp_path / "sea-bill.json"
    particulars.write_text(json.dumps(bill(SEA, kind="sea_bill", vessel="Cosco Shipping Aries", voyage="062W",
                                           port_of_loading="CNQZH", port_of_discharge="SGSIN")))
    issued = cli("issue", str(particulars), *carrier)
    assert issued.exit_code == 0, issued.output
    assert json.loads(issued.stdout)["kind"] == "sea_bill"
    outsider = cli("endorse", SEA, "--to", USCC["other_trader"], *lender)       # only the holder endorses
    assert outsider.exit_code == 1 and json.loads(outsider.stderr)["errors"][0]["code"] == "not_found"
    steps = [("pledge", SEA, "--bank", USCC["spare"], *trader), ("release", SEA, *lender),
             ("pledge", SEA, "--bank", USCC["spare"], *trader), ("take-over", SEA, *lender),
             ("surrender", SEA, *lender)]
    for step in steps:
        done = cli(*step)
        assert done.exit_code == 0, (step[0], done.output)
    assert json.loads(done.stdout)["status"] == "surrendered"

    report = titles.verify(w.uow, w["customs_officer"], SEA)
    assert report["valid"] and report["length"] == 6
    keys = {k["enterprise_id"]: k for persona in ("carrier", "trader", "other_bank")
            for k in titles.list_keys(w.uow, w[persona]) if k["current"]}
    records = titles.get_bill(w.uow, w["customs_officer"], SEA)["records"]
    assert all(not keys[r["actor"]["id"]]["custodial"] and r["key"] == keys[r["actor"]["id"]]["fingerprint"]
               for r in records)


def test_the_issuer_voids_and_a_refusal_comes_back_as_the_apis_errors(titles_world, party, tmp_path):
    carrier, trader = party("carrier"), party("trader")
    particulars = tmp_path / "bill.json"
    particulars.write_text(json.dumps(bill()))
    assert cli("issue", str(particulars), *carrier).exit_code == 0
    refused = cli("void", "CQDUI2026000001", *trader)
    assert refused.exit_code == 1
    assert [e["code"] for e in json.loads(refused.stderr)["errors"]] == ["not_the_issuer"]
    voided = cli("void", "CQDUI2026000001", *carrier)
    assert voided.exit_code == 0 and json.loads(voided.stdout)["status"] == "void"


def test_a_key_file_others_may_read_is_refused_before_anything_is_sent(titles_world, party):
    options = party("trader")
    key = options[options.index("--key") + 1]
    import os

    os.chmod(key, 0o644)
    refused = cli("endorse", "CQDUI2026000001", "--to", USCC["other_trader"], *options)
    assert refused.exit_code == 1 and "key_file_too_open" in refused.stderr


def test_the_client_signs_only_the_record_it_meant_even_if_the_server_sends_another():
    """A server (or anyone between) that prepares a record for another bill, another action or
    another key gets no signature: the bytes are rebuilt and checked on the party's machine."""
    import httpx

    from tradewindow.titles import client as titles_client
    from tradewindow.titles.model import Action, Status, TitleState

    private = model.new_private_key()
    mine = model.fingerprint(model.public_key_of(private))
    state = TitleState("OTHER-BILL-1", "d" * 64, "carrier", None, "trader", None, Status.ACTIVE, 1, "a" * 64)
    record = model.next_record(state, Action.SURRENDER, "trader", model.parse_at("2026-05-01T08:30:00Z"), mine)
    sent = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        data = model.canonical_bytes(record)
        return httpx.Response(200, json={"record": record.body(), "canonical": data.decode(),
                                         "hash": model.record_hash(record), "signed_at": "x", "previous": "a" * 64})

    remote = titles_client.TitlesClient("http://server", "key", private,
                                        httpx.Client(base_url="http://server", transport=httpx.MockTransport(answer)))
    with pytest.raises(titles_client.ClientError) as caught:
        remote.act("CQDUI2026000001", "surrender")
    assert [e["code"] for e in caught.value.errors] == ["record_not_as_meant"]
    assert "bill" in caught.value.errors[0]["message"]
    assert sent == ["/api/v1/titles/CQDUI2026000001/prepare"]          # the action was never sent
