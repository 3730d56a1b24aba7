"""A throwaway PostgreSQL server for tests: Debian's binaries (`make test` installs the
`postgresql` package), a fresh cluster in a temporary directory, 127.0.0.1 on a free port,
password authentication over TCP so a test can tell a right password from a wrong one.

As root the server runs as the `postgres` user (PostgreSQL refuses to run as root); pytest's
own temporary directories are private to the user running it, so the cluster lives in a
directory of its own under the system's temporary directory."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "postgres"


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    data: Path | None = None  # the cluster, for `stop`

    def stop(self) -> None:
        """Stop the server now (fast shutdown), as an outage would; `running_postgres` then
        only deletes the cluster."""
        if self.data is not None:
            _run(bin_dir() / "pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def reload(self) -> None:
        """Have the server read its configuration files (pg_hba.conf) again; it does so
        shortly after, not before this returns."""
        if self.data is not None:
            _run(bin_dir() / "pg_ctl", "-D", str(self.data), "reload")

    def connect(self, dbname: str = "postgres"):
        import psycopg2

        return psycopg2.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname=dbname
        )

    def create_database(self, name: str) -> None:
        connection = self.connect()
        try:
            connection.autocommit = True  # CREATE DATABASE cannot run inside a transaction
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()


def bin_dir() -> Path:
    """The newest Debian PostgreSQL server binaries, else the ones on PATH."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    initdb = found[-1] if found else shutil.which("initdb")
    if initdb is None:
        raise RuntimeError(
            "PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/initdb): "
            "run `make test`, which installs Debian's postgresql, or apt-get install postgresql"
        )
    return Path(initdb).parent


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a server with a new cluster; stop it (fast shutdown) and delete it afterwards."""
    pg_bin = bin_dir()
    root = Path(tempfile.mkdtemp(prefix="kommunelake-pg-"))
    password = "pg-test-" + os.urandom(8).hex()
    (root / "pwfile").write_text(password + "\n")
    if os.geteuid() == 0:
        shutil.chown(root, SUPERUSER)
        shutil.chown(root / "pwfile", SUPERUSER)
    data = root / "data"
    try:
        port = _start(pg_bin, root, data)
        try:
            yield PostgresServer(
                host="127.0.0.1", port=port, user=SUPERUSER, password=password, data=data
            )
        finally:
            if (data / "postmaster.pid").exists():  # not stopped by the test already
                _run(pg_bin / "pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _start(pg_bin: Path, root: Path, data: Path) -> int:
    """initdb and start a cluster in `data`; returns its port. A failure shows the server log."""
    log = root / "server.log"
    port = _free_port()
    # fsync off: the cluster is thrown away, and syncing costs seconds on a shared disk.
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
    try:
        _run(
            pg_bin / "initdb",
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            f"--pwfile={root / 'pwfile'}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
        _run(pg_bin / "pg_ctl", "-D", str(data), "-l", str(log), "-o", options, "-w", "start")
    except RuntimeError as error:
        server_log = log.read_text() if log.exists() else "(no server log)"
        raise RuntimeError(f"{error}\nserver log:\n{server_log}") from None
    return port


def _run(*command: str | Path) -> None:
    """Run a server command, as the `postgres` user when this process is root."""
    args = [str(c) for c in command]
    if os.geteuid() == 0:
        args = ["runuser", "-u", SUPERUSER, "--", *args]
    done = subprocess.run(args, capture_output=True, text=True, cwd="/")
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
