"""Headless chromium for browser tests, and a live server to point it at.

Playwright drives Debian's own chromium (/usr/bin/chromium, package `chromium`); it never downloads a
browser build, which these machines could not fetch anyway. Each launch gets a fresh, temporary
profile (Playwright makes and deletes it), and each test should use its own browser context, so
cookies and storage never leak between tests.

    with launch_chromium() as browser:
        page = browser.new_page()
        with serve_in_thread(app) as base_url:
            page.goto(base_url + "/login")

A missing chromium is an error naming the Debian package, never a skip.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "ChromiumUnavailable",
    "ThreadedServer",
    "browser",
    "chromium_executable",
    "launch_chromium",
    "page",
    "serve_in_thread",
]

CHROMIUM = Path("/usr/bin/chromium")
DEBIAN_PACKAGE = "chromium"

# Quiet, offline, sandbox-free (the suite may run as root in a container) headless chromium.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class ChromiumUnavailable(RuntimeError):
    """Chromium cannot be launched here; the message says what to install."""


def chromium_executable() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        raise ChromiumUnavailable(
            f"{CHROMIUM} not found: install the Debian package `{DEBIAN_PACKAGE}` "
            f"(apt-get install {DEBIAN_PACKAGE}; `make test` does it through scripts/ensure-system-deps.sh)."
        )
    return str(CHROMIUM)


@contextlib.contextmanager
def launch_chromium(**launch_options: Any) -> Iterator[Browser]:
    """Debian's chromium, headless, through Playwright's sync API; closed when the block ends."""
    executable = chromium_executable()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            **launch_options,
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One chromium per test session (per xdist worker); import it into conftest.py to use it."""
    with launch_chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh browser context: no cookies or storage from other tests."""
    context = browser.new_context()
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


class ThreadedServer:
    """uvicorn serving an ASGI app from a background thread on a free 127.0.0.1 port.

    The listening socket is bound here, before the thread starts, so the port is ours: no race with
    other xdist workers between choosing a port and binding it.
    """

    def __init__(self, app: Any, *, lifespan: str = "auto", log_level: str = "warning") -> None:
        import uvicorn

        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, lifespan=lifespan, log_level=log_level, access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"uvicorn:{self.port}",
            daemon=True,
        )

    def start(self, timeout: float = 20.0) -> str:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                self._socket.close()
                raise RuntimeError(f"uvicorn for {self.base_url} stopped during start-up (see the log above)")
            if time.monotonic() > deadline:
                self.shutdown()
                raise RuntimeError(f"uvicorn for {self.base_url} did not start within {timeout} s")
            time.sleep(0.02)
        return self.base_url

    def shutdown(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._thread.is_alive():
            # Open connections (a browser's keep-alive) can hold a graceful exit: cut them.
            self._server.force_exit = True
            self._thread.join(timeout)
        self._socket.close()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()


@contextlib.contextmanager
def serve_in_thread(app: Any, **options: Any) -> Iterator[str]:
    """Serve `app` for the duration of the block and yield its base URL (http://127.0.0.1:PORT)."""
    with ThreadedServer(app, **options) as base_url:
        yield base_url
