"""A throwaway PostgreSQL cluster for the test session.

Every database test runs on SQLite and on a real PostgreSQL server; this module starts that server
itself, so `make test` needs nothing but Debian's `postgresql` package (the server binaries under
/usr/lib/postgresql/<version>/bin; the packaged cluster and service are never touched).

    with running_cluster() as cluster:
        url = cluster.create_database("tw_test")   # postgresql+psycopg://postgres@127.0.0.1:PORT/tw_test

`initdb` and `pg_ctl` refuse to run as root, so when the suite runs as root (CI does) they run as the
`postgres` system user through `runuser`. Each pytest-xdist worker starts its own cluster in its own
directory on its own port: simple, and the workers never see each other's data. Durability is switched
off (fsync, synchronous_commit, full_page_writes): the cluster lives for one test session only.

A missing server is an error naming the Debian package, never a skip: a suite that silently drops
its PostgreSQL half would pass while testing half of what it claims.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

__all__ = [
    "PostgresCluster",
    "PostgresUnavailable",
    "SIZED_FOR_BENCHMARKS",
    "find_postgres_bin",
    "postgres_cluster",
    "running_cluster",
]

DEBIAN_PACKAGE = "postgresql"
SERVER_USER = "postgres"  # the superuser role initdb creates (-U), and the system user when root
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server cannot be started here; the message says what to install."""


def find_postgres_bin() -> Path:
    """The directory holding initdb and pg_ctl: Debian's highest version, else the PATH."""

    def version_key(path: Path) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", path.parent.name)) or (0,)

    candidates = sorted(
        (d for d in Path("/usr/lib/postgresql").glob("*/bin") if _has_server(d)),
        key=version_key,
        reverse=True,
    )
    if candidates:
        return candidates[0]
    initdb = shutil.which("initdb")
    if initdb and _has_server(Path(initdb).parent):
        return Path(initdb).parent
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin or on "
        f"PATH: install the Debian package `{DEBIAN_PACKAGE}` (apt-get install {DEBIAN_PACKAGE}; "
        "`make test` does it through scripts/ensure-system-deps.sh)."
    )


def _has_server(directory: Path) -> bool:
    return all(os.access(directory / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres"))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresCluster:
    """One PostgreSQL server in a temporary directory, listening on 127.0.0.1 only.

    `start()` runs initdb and pg_ctl and waits until the server accepts connections; `stop()` shuts it
    down and deletes the directory. Both are idempotent; `stop()` is also registered with atexit so an
    interrupted session does not leave a server behind.
    """

    def __init__(self, bin_dir: Path | None = None, settings: Mapping[str, str] | None = None) -> None:
        self.bin_dir = bin_dir or find_postgres_bin()
        self.settings = dict(settings or {})
        self.as_root = os.geteuid() == 0
        self.port: int | None = None
        self.base_dir: Path | None = None
        self._running = False
        if self.as_root:
            try:
                self._server_user = pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise PostgresUnavailable(
                    f"running as root, but there is no `{SERVER_USER}` system user to run initdb and "
                    f"pg_ctl as (they refuse root): install the Debian package `{DEBIAN_PACKAGE}`, which "
                    "creates it."
                ) from None
            if shutil.which("runuser") is None:
                raise PostgresUnavailable(
                    "running as root, but `runuser` (Debian package util-linux) is missing."
                )

    # --- paths -------------------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        assert self.base_dir is not None, "cluster not started"
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.base_dir is not None, "cluster not started"
        return self.base_dir / "sock"

    @property
    def log_file(self) -> Path:
        assert self.base_dir is not None, "cluster not started"
        return self.base_dir / "server.log"

    # --- life cycle --------------------------------------------------------------------------------

    def start(self, attempts: int = 3) -> PostgresCluster:
        if self._running:
            return self
        self._make_base_dir()
        self._initdb()
        # Another process may take the free port between our probe and the server's bind: retry.
        for attempt in range(1, attempts + 1):
            self.port = _free_port()
            try:
                self._pg_ctl_start()
                break
            except PostgresUnavailable:
                if attempt == attempts:
                    self._remove_base_dir()
                    raise
        self._running = True
        atexit.register(self.stop)
        self._wait_until_ready()
        return self

    def stop(self) -> None:
        if self._running:
            self._running = False
            # Immediate: nothing here needs a clean checkpoint, and teardown should be quick.
            self._run(
                [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"],
                check=False,
            )
        self._remove_base_dir()

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- databases ---------------------------------------------------------------------------------

    def url(self, name: str = "postgres") -> str:
        """SQLAlchemy URL (psycopg 3 driver) for database `name`."""
        return f"postgresql+psycopg://{SERVER_USER}@127.0.0.1:{self.port}/{name}"

    def dsn(self, name: str = "postgres") -> str:
        """libpq connection string for database `name`, for psycopg.connect()."""
        return f"postgresql://{SERVER_USER}@127.0.0.1:{self.port}/{name}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create database `name` (dropped first if it exists) and return its SQLAlchemy URL."""
        self._check_name(name)
        if template is not None:
            self._check_name(template)
        statement = f'CREATE DATABASE "{name}" ENCODING \'UTF8\''
        if template is not None:
            statement += f' TEMPLATE "{template}"'
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.execute(statement)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self._check_name(name)
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def execute(self, statement: str, database: str = "postgres") -> None:
        """Run one statement in autocommit mode (CREATE/DROP DATABASE cannot run in a transaction)."""
        import psycopg

        with psycopg.connect(self.dsn(database), autocommit=True, connect_timeout=10) as conn:
            conn.execute(statement)  # type: ignore[arg-type]  # names are checked by _check_name

    @staticmethod
    def _check_name(name: str) -> None:
        if not _NAME_RE.match(name):
            raise ValueError(f"database name {name!r}: use letters, digits and _ (at most 63)")

    # --- internals ---------------------------------------------------------------------------------

    def _make_base_dir(self) -> None:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        # Short path under /tmp: the socket path must stay below ~100 bytes, and when we are root the
        # postgres user must be able to reach it (a root-only TMPDIR like /root/tmp would not do).
        parent = "/tmp" if self.as_root or len(tempfile.gettempdir()) > 40 else None
        self.base_dir = Path(tempfile.mkdtemp(prefix=f"twpg-{worker}-", dir=parent))
        self.socket_dir.mkdir()
        if self.as_root:
            for path in (self.base_dir, self.socket_dir):
                os.chown(path, self._server_user.pw_uid, self._server_user.pw_gid)

    def _remove_base_dir(self) -> None:
        if self.base_dir is not None and self.base_dir.exists():
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def _initdb(self) -> None:
        base = [str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-A", "trust", "-U", SERVER_USER,
                "-E", "UTF8", "--no-sync"]
        # C.UTF-8 gives Unicode-aware upper()/lower() with byte-order (deterministic) sorting; fall
        # back to plain C where the C library lacks it.
        result = self._run([*base, "--locale=C.UTF-8"], check=False)
        if result.returncode != 0:
            if self.data_dir.exists():
                self._run(["rm", "-rf", str(self.data_dir)], check=False)
            result = self._run([*base, "--locale=C"], check=False)
        if result.returncode != 0:
            self._remove_base_dir()
            raise PostgresUnavailable(f"initdb failed ({result.returncode}):\n{result.stdout}{result.stderr}")

    def _pg_ctl_start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.socket_dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200 -c log_min_messages=warning"
            + "".join(f" -c {name}={value}" for name, value in self.settings.items())
        )
        result = self._run(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file),
             "-w", "-t", "60", "-o", options, "start"],
            check=False,
        )
        if result.returncode != 0:
            log = self.log_file.read_text(errors="replace")[-4000:] if self.log_file.exists() else ""
            raise PostgresUnavailable(
                f"pg_ctl start failed ({result.returncode}) on port {self.port}:\n"
                f"{result.stdout}{result.stderr}\n--- server log ---\n{log}"
            )

    def _wait_until_ready(self, timeout: float = 30.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.dsn(), connect_timeout=2) as conn:
                    conn.execute("select 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise
                time.sleep(0.1)

    def _run(self, argv: list[str], check: bool) -> subprocess.CompletedProcess[str]:
        if self.as_root:
            argv = ["runuser", "-u", SERVER_USER, "--", *argv]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return subprocess.run(
            argv, cwd=self.base_dir, env=env, check=check, capture_output=True, text=True, timeout=120
        )


# A server sized for the machine, as the benchmarks use it: the default 128 MB of shared buffers
# hold a fraction of the indexes of a million-parcel or million-event run, and the default 1 GB of
# WAL between checkpoints forces several checkpoints during one bulk load.
SIZED_FOR_BENCHMARKS = {"shared_buffers": "2GB", "max_wal_size": "8GB", "checkpoint_timeout": "30min"}


def copy_at_once(dsn: str, parts: list[list[tuple[str, bytes]]]) -> float:
    """Seconds to load rows in COPY's text format into the database at `dsn`: each part, a list of
    (table, its rows), through a connection of its own and in one transaction, all parts at once.
    The benchmarks' raw limits: one part is one COPY stream; rows dealt out between two parts use
    both cores as the pipelines' two processes do."""
    import psycopg

    def load(part: list[tuple[str, bytes]]) -> None:
        with psycopg.connect(dsn) as conn, conn.cursor() as cursor:
            for table, rows in part:
                with cursor.copy(f"COPY {table} FROM STDIN") as copy:
                    view = memoryview(rows)
                    for start in range(0, len(view), 1 << 20):
                        copy.write(view[start:start + (1 << 20)])
            conn.commit()
    threads = [threading.Thread(target=load, args=(part,)) for part in parts]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began


@contextlib.contextmanager
def running_cluster(settings: Mapping[str, str] | None = None) -> Iterator[PostgresCluster]:
    """A started cluster for the duration of the block (with these server settings on top of the
    test suite's); stopped and deleted afterwards."""
    cluster = PostgresCluster(settings=settings)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """The session's PostgreSQL cluster (one per xdist worker); import it into conftest.py to use it."""
    with running_cluster() as cluster:
        yield cluster
