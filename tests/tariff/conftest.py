"""Fixtures of the tariff tests that need the database: the demo schedule loaded through the
service, as customs would load it."""

from __future__ import annotations

import pytest

from tests.conftest import World
from tradewindow.tariff import service


@pytest.fixture
def demo_schedule(world: World) -> dict:
    """The schedule, agreements and exchange rates shipped in tradewindow/tariff/data."""
    return service.load_demo_schedule(world.uow, world["customs_officer"])
