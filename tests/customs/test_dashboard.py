"""The home page shows each person what waits for them."""

from __future__ import annotations

import re

from tests.conftest import PASSWORD
from tests.customs.conftest import ALUMINIUM, filing
from tradewindow.customs import service as customs


def _cards(client, username: str) -> dict[str, str]:
    client.cookies.clear()
    page = client.post("/login", data={"username": username, "password": PASSWORD}, follow_redirects=True)
    assert page.status_code == 200
    return dict(re.findall(r'<div class="muted">(.*?)</div>\s*<div class="figure">(.*?)</div>', page.text))


def test_the_trader_sees_its_declarations_with_taxes_due_and_the_licensing_officer_its_tasks(customs_world, client):
    customs.lodge_declaration(customs_world.uow, customs_world["trader"], filing("LRN-D1", ALUMINIUM))
    customs.lodge_declaration(customs_world.uow, customs_world["trader"], filing("LRN-D2"))   # a car: two tasks
    assert _cards(client, "trader")["Declarations with taxes due"] == "1"
    assert _cards(client, "other_trader")["Declarations with taxes due"] == "0"
    assert _cards(client, "licensing_officer")["Agency tasks to decide"] == "2"
