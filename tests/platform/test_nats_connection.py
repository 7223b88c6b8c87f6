"""platform.nats_queue.NatsConnection when its server goes away (a restart, or the test suite
stopping its server while a client is still connected): each error is one log line, never a
traceback, and the client keeps trying until it is closed."""

from __future__ import annotations

import logging
import time

from tests.support.nats import running_nats
from tradewindow.platform.nats_queue import NatsConnection


def test_a_lost_server_is_logged_one_line_at_a_time_without_a_traceback(caplog):
    with caplog.at_level(logging.INFO), running_nats() as server:
        connection = NatsConnection(server.url)
        try:
            server.stop()
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and not any("refused" in r.getMessage().lower() for r in caplog.records):
                time.sleep(0.1)
        finally:
            connection.close()
    told = [r for r in caplog.records if "nats" in r.name]
    assert any("refused" in r.getMessage().lower() for r in told), [r.getMessage() for r in told]
    assert any("disconnected" in r.getMessage() for r in told)
    assert [r.getMessage() for r in told if r.exc_info or "\n" in r.getMessage()] == []


def test_closing_a_connection_logs_nothing(caplog):
    with running_nats() as server:
        connection = NatsConnection(server.url)
        with caplog.at_level(logging.INFO):
            connection.close()
    assert [r.getMessage() for r in caplog.records if "nats" in r.name] == []
