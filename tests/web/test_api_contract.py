"""Cross-cutting API contract: every endpoint refuses anonymous callers, every error has the one
shape `{"errors": [{"path", "code", "message"}]}`, and nothing answers 500 (issue 2)."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from tradewindow.platform.settings import Settings
from tradewindow.web.app import create_app

DUMMY_ID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
PUBLIC_API = {("POST", "/api/v1/auth/token")}


def api_operations() -> list[tuple[str, str]]:
    app = create_app(Settings(database_url="sqlite:///:memory:"))
    operations = set()
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, APIRoute) and route.path.startswith("/api/v1/"):
            for method in route.methods:
                operations.add((method, route.path))
    return sorted(operations - PUBLIC_API)


def assert_error_shape(response, status: int, code: str | None = None) -> list[dict]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"errors"}
    assert body["errors"], "an error response names at least one problem"
    for problem in body["errors"]:
        assert set(problem) == {"path", "code", "message"}
        assert all(isinstance(value, str) for value in problem.values())
        assert re.fullmatch(r"[a-z][a-z0-9_]*", problem["code"]), problem["code"]
        assert problem["message"]
    if code is not None:
        assert [p["code"] for p in body["errors"]] == [code]
    return body["errors"]


def call(client: TestClient, method: str, path: str, **kwargs):
    url = re.sub(r"\{[^}]+\}", DUMMY_ID, path)
    if method in {"POST", "PUT", "PATCH"}:
        kwargs.setdefault("json", {})
    return client.request(method, url, **kwargs)


OPERATIONS = api_operations()


def test_the_api_has_operations_to_check():
    assert len(OPERATIONS) > 20
    assert ("PUT", "/api/v1/calendar/days/{day}") in OPERATIONS


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_api_operation_refuses_an_anonymous_caller(client, method, path):
    assert_error_shape(call(client, method, path), 401, "not_authenticated")


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_api_operation_refuses_a_bogus_bearer_token(client, method, path):
    response = call(client, method, path, headers={"Authorization": "Bearer tw_tok_not-a-real-token"})
    assert_error_shape(response, 401, "invalid_token")


def test_an_empty_or_foreign_authorization_header_counts_as_anonymous(client):
    for header in ("", "Bearer", "Bearer   ", "Basic dXNlcjpwYXNz"):
        response = client.get("/api/v1/me", headers={"Authorization": header})
        assert_error_shape(response, 401, "not_authenticated")


def test_an_unknown_route_is_a_404_in_the_error_shape(client):
    assert_error_shape(client.get("/api/v1/no-such-thing"), 404, "not_found")


def test_a_wrong_method_is_a_405_in_the_error_shape(client):
    assert_error_shape(client.delete("/healthz"), 405, "method_not_allowed")


def test_malformed_json_is_a_422_in_the_error_shape(client):
    response = client.post("/api/v1/auth/token", content=b'{"username": "admin", ',
                           headers={"Content-Type": "application/json"})
    assert_error_shape(response, 422, "malformed_json")


def test_unknown_fields_and_missing_fields_are_all_listed(client):
    response = client.post("/api/v1/auth/token", json={"user": "admin", "colour": "red"})
    problems = assert_error_shape(response, 422)
    codes = {(p["path"], p["code"]) for p in problems}
    assert {("username", "required"), ("password", "required"), ("user", "unknown_field"),
            ("colour", "unknown_field")} <= codes


@pytest.fixture
def small_body_client(db):
    app = create_app(Settings(database_url=str(db.url), max_body_bytes=1000), db)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_an_oversized_body_is_refused_with_413(small_body_client):
    big = {"username": "admin", "password": "x" * 2000}
    assert_error_shape(small_body_client.post("/api/v1/auth/token", json=big), 413, "payload_too_large")


def test_an_oversized_chunked_body_is_refused_with_413(small_body_client):
    def chunks():
        for _ in range(20):
            yield b"x" * 100

    response = small_body_client.post("/api/v1/auth/token", content=chunks(),
                                      headers={"Content-Type": "application/json"})
    assert_error_shape(response, 413, "payload_too_large")


def test_a_body_under_the_limit_is_read(small_body_client):
    response = small_body_client.post("/api/v1/auth/token", json={"username": "nobody", "password": "x"})
    assert response.status_code == 401


def test_healthz_reports_the_database(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": db.dialect.name}


def test_metrics_are_in_the_prometheus_text_format(client):
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# TYPE tradewindow_http_requests_total counter" in text
    assert re.search(r'tradewindow_http_requests_total\{method="GET",route="/healthz",status="200"\} \d', text)
    assert "tradewindow_http_request_duration_seconds_bucket" in text
    assert 'tradewindow_job_queue_depth{status="queued"}' in text
    assert "tradewindow_outbox_unrelayed_events" in text


def test_metrics_label_requests_by_route_template_not_by_id(client):
    client.get(f"/api/v1/enterprises/{DUMMY_ID}")
    text = client.get("/metrics").text
    assert DUMMY_ID not in text
    assert 'route="/api/v1/enterprises/{enterprise_id}"' in text


def test_the_openapi_document_and_the_docs_are_served(client):
    schema = client.get("/openapi.json")
    assert schema.status_code == 200
    document = schema.json()
    assert document["openapi"].startswith("3.")
    assert "/api/v1/auth/token" in document["paths"]
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]
    assert "/openapi.json" in docs.text
