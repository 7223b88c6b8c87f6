"""Schemathesis against our own OpenAPI document, as an administrator (who may call everything):
whatever it sends, no response is a 500 and every 4xx has the one error shape.

Bounded to a few examples per operation and run on SQLite only: it checks the HTTP edge (parsing,
validation, error mapping), which does not depend on the database."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.conftest import PASSWORD, _empty
from tests.support.reference import reference_data_dir
from tradewindow.migrations import upgrade
from tradewindow.platform.auth import SYSTEM
from tradewindow.platform.db import UnitOfWork, make_engine
from tradewindow.platform.settings import Settings
from tradewindow.registry import service as registry
from tradewindow.web.app import create_app

# The schema is read once at collection; the database behind the app is put in place by the
# fixture below (get_uow reads app.state.engine on every request).
APP = create_app(Settings(database_url="sqlite:///:memory:"))
# Logging out would revoke the token the rest of the run uses.
schema = schemathesis.openapi.from_asgi("/openapi.json", APP).exclude(path="/api/v1/auth/logout")


@pytest.fixture(scope="module")
def admin_headers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}")
    upgrade(engine)
    registry.create_user(UnitOfWork(engine), SYSTEM, "admin", PASSWORD, "admin", "Administrator")
    APP.state.engine = engine
    with TestClient(APP) as client:
        response = client.post("/api/v1/auth/token", json={"username": "admin", "password": PASSWORD})
    assert response.status_code == 200, response.text
    # EPCIS capture validates against GS1's schema, which the operator configures (logistics/schema.py).
    previous = os.environ.get("TRADEWINDOW_EPCIS_SCHEMA")
    os.environ["TRADEWINDOW_EPCIS_SCHEMA"] = str(reference_data_dir() / "epcis" / "EPCIS-JSON-Schema.json")
    yield {"Authorization": f"Bearer {response.json()['access_token']}"}
    if previous is None:
        os.environ.pop("TRADEWINDOW_EPCIS_SCHEMA", None)
    else:
        os.environ["TRADEWINDOW_EPCIS_SCHEMA"] = previous
    _empty(engine)
    engine.dispose()


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_makes_the_api_answer_500_and_every_4xx_has_the_error_shape(case, admin_headers):
    response = case.call(headers=admin_headers)
    case.validate_response(response, checks=[not_a_server_error])
    if 400 <= response.status_code < 500:
        body = response.json()
        assert set(body) == {"errors"}, body
        assert body["errors"], body
        for problem in body["errors"]:
            assert set(problem) == {"path", "code", "message"}, problem
