"""A throwaway NATS server with JetStream for the test session.

The JetStream job queue and the cross-border e-commerce stream are tested against a real server,
started here like the PostgreSQL cluster (tests/support/postgres.py): Debian's `nats-server`
package, `-js` with its store in a temporary directory, on a free port of 127.0.0.1, one per
pytest-xdist worker. A missing binary is an error naming the package, never a skip.

    with running_nats() as server:
        server.url      # nats://127.0.0.1:PORT
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["NatsServer", "NatsUnavailable", "find_nats_server", "nats_server", "running_nats"]

DEBIAN_PACKAGE = "nats-server"


class NatsUnavailable(RuntimeError):
    """The NATS server cannot be started here; the message says what to install."""


def find_nats_server() -> Path:
    for candidate in (shutil.which("nats-server"), "/usr/sbin/nats-server", "/usr/bin/nats-server"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise NatsUnavailable(
        "nats-server not found on PATH or in /usr/sbin: install the Debian package "
        f"`{DEBIAN_PACKAGE}` (apt-get install {DEBIAN_PACKAGE}; .ci/run installs it)."
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NatsServer:
    def __init__(self, binary: Path | None = None) -> None:
        self.binary = binary or find_nats_server()
        self.port: int | None = None
        self.store: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, attempts: int = 3) -> NatsServer:
        self.store = Path(tempfile.mkdtemp(prefix="twnats-"))
        for attempt in range(1, attempts + 1):
            self.port = _free_port()       # may be taken before the server binds it: retry
            log = self.store / "server.log"
            log.unlink(missing_ok=True)     # "Server is ready" must be this attempt's (_wait_until_ready)
            self.process = subprocess.Popen(
                [str(self.binary), "-js", "-sd", str(self.store / "js"), "-a", "127.0.0.1",
                 "-p", str(self.port), "-l", str(log)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if self._wait_until_ready():
                atexit.register(self.stop)
                return self
            self.process.kill()
            self.process.wait()
            if attempt == attempts:
                text = log.read_text(errors="replace")[-4000:] if log.exists() else ""
                self.stop()
                raise NatsUnavailable(f"nats-server did not start on port {self.port}:\n{text}")
        raise AssertionError("unreachable")

    def _wait_until_ready(self, timeout: float = 15.0) -> bool:
        """Whether our server came up: it says so in its log ("Server is ready", once it listens)
        and answers on its port. Only an answer would not do: when the free port was taken
        meanwhile (another pytest-xdist worker's server), ours fails to bind and exits, and the
        one that answers there is not ours; its tests would be refused once it stops."""
        assert self.process is not None and self.store is not None
        log = self.store / "server.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if not log.exists() or b"Server is ready" not in log.read_bytes():
                time.sleep(0.05)
                continue
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(4).startswith(b"INFO"):
                        return True
            except OSError:
                time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.store is not None:
            shutil.rmtree(self.store, ignore_errors=True)


@contextlib.contextmanager
def running_nats() -> Iterator[NatsServer]:
    server = NatsServer()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def nats_server() -> Iterator[NatsServer]:
    """The session's NATS server (one per xdist worker); import it into conftest.py to use it."""
    with running_nats() as server:
        yield server
