"""The test infrastructure works here: PostgreSQL starts, chromium renders, a live server serves."""

from __future__ import annotations

import socket

import psycopg
import pytest

from tests.support.browser import serve_in_thread
from tests.support.postgres import PostgresCluster, running_cluster
from tests.support.reference import reference_data_dir, require_reference


@pytest.mark.postgres
def test_a_throwaway_postgres_cluster_starts_and_serves_a_new_database() -> None:
    with running_cluster() as cluster:
        url = cluster.create_database("tw_support_check")
        assert url == f"postgresql+psycopg://postgres@127.0.0.1:{cluster.port}/tw_support_check"
        with psycopg.connect(cluster.dsn("tw_support_check")) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
            assert conn.execute("show server_encoding").fetchone() == ("UTF8",)
            assert conn.execute("show fsync").fetchone() == ("off",)
        base_dir = cluster.base_dir
    assert base_dir is not None and not base_dir.exists()  # stopped and deleted


@pytest.mark.postgres
def test_the_cluster_url_works_with_sqlalchemy() -> None:
    import sqlalchemy

    with PostgresCluster() as cluster:
        engine = sqlalchemy.create_engine(cluster.create_database("tw_support_sa"))
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("select 'chongqing 重庆'")).scalar() == "chongqing 重庆"
        engine.dispose()


# These use the session's `page` fixture: Playwright's sync API cannot run two instances at once
# in one thread, and other browser tests in this worker may already hold the session's chromium.
@pytest.mark.browser
def test_headless_chromium_loads_a_page(page) -> None:
    page.goto("data:text/html,<title>Trade Window</title><p>hello</p>")
    assert page.title() == "Trade Window"


@pytest.mark.browser
def test_chromium_reaches_an_app_served_in_a_thread(page) -> None:
    async def app(scope, receive, send):  # the smallest ASGI app
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/html; charset=utf-8")]})
        await send({"type": "http.response.body", "body": b"<title>served</title>"})

    with serve_in_thread(app) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        page.goto(base_url + "/")
        assert page.title() == "served"


def test_reference_data_follows_the_environment_and_its_absence_fails(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path) -> None:
    monkeypatch.setenv("TRADEWINDOW_REFERENCE_DATA", str(tmp_path))
    assert reference_data_dir() == tmp_path
    (tmp_path / "present").mkdir()
    assert require_reference("present") == tmp_path / "present"
    with pytest.raises(pytest.fail.Exception, match=f"reference data absent-set absent at {tmp_path}"):
        require_reference("absent-set")


def test_a_nats_server_is_ready_only_once_it_says_so_not_when_another_answers_on_its_port(monkeypatch) -> None:
    """The free port may be taken between the probe and the server's bind (by another pytest-xdist
    worker's server, say): the one that answers there is not ours. Ours, failing to bind, is started
    again on another port."""
    from tests.support import nats

    with nats.running_nats() as other:
        ports = iter([other.port])
        real_free_port = nats._free_port
        monkeypatch.setattr(nats, "_free_port", lambda: next(ports, None) or real_free_port())
        with nats.running_nats() as ours:
            assert ours.port != other.port and ours.process is not None and ours.process.poll() is None
            other.stop()
            with socket.create_connection(("127.0.0.1", ours.port), timeout=5) as probe:
                assert probe.recv(4) == b"INFO"
