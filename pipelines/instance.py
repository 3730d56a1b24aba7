"""The Dagster instance of a home: the repository's dagster.yaml in DAGSTER_HOME, with its
runs, event logs and schedules in PostgreSQL when KOMMUNELAKE_POSTGRES_HOST is set.

Without that variable the instance is SQLite under DAGSTER_HOME, the embedded default. With
it, the copied dagster.yaml gets a `storage: postgres:` block whose values are `{env: VAR}`
references: every Dagster process (CLI, webserver, daemon, code server, run workers) reads
them from its environment when it opens the instance, so the password is never written to
disk, and the queue, pools and retries of the repository's file apply unchanged.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from lake.errors import ConfigError, one_line

HOST = "KOMMUNELAKE_POSTGRES_HOST"
PORT = "KOMMUNELAKE_POSTGRES_PORT"
USER = "KOMMUNELAKE_POSTGRES_USER"
PASSWORD = "KOMMUNELAKE_POSTGRES_PASSWORD"
DB = "KOMMUNELAKE_POSTGRES_DB"

# dagster-postgres `postgres_db` field -> the variable that holds its value
_FIELDS = {"hostname": HOST, "port": PORT, "username": USER, "password": PASSWORD, "db_name": DB}
_CONNECT_TIMEOUT = 10  # seconds; libpq's default is to wait for ever
_SCHEME = "postgresql+psycopg2"  # the driver installed (SQLAlchemy 2 would pick psycopg 3)


@dataclass(frozen=True)
class PostgresSettings:
    host: str
    port: int
    user: str
    db: str
    password: str = field(default="", repr=False)

    @property
    def address(self) -> str:
        """The host as libpq takes it: an IPv6 address without the brackets a URL needs."""
        if self.host.startswith("[") and self.host.endswith("]"):
            return self.host[1:-1]
        return self.host

    @property
    def where(self) -> str:
        return f"database {self.db!r} on {self.host}:{self.port} as user {self.user!r}"


def postgres_settings(environ: Mapping[str, str]) -> PostgresSettings | None:
    """The PostgreSQL server for the instance, or None (SQLite) when KOMMUNELAKE_POSTGRES_HOST
    is unset or empty. An empty variable counts as unset, as in .env.example."""
    host = environ.get(HOST, "")
    if not host:
        return None
    missing = [name for name in (USER, DB) if not environ.get(name)]
    if missing:
        raise ConfigError(
            f"{HOST} is set, so the Dagster instance is to be kept in PostgreSQL, but "
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not: set "
            f"{'it' if len(missing) == 1 else 'them'} (see .env.example), or unset {HOST} "
            "for SQLite under the home"
        )
    port = environ.get(PORT) or "5432"
    if not port.isdigit():
        raise ConfigError(f"{PORT} must be a port number, got {port!r}")
    settings = PostgresSettings(
        host=host,
        port=int(port),
        user=environ[USER],
        db=environ[DB],
        password=environ.get(PASSWORD, ""),
    )
    _require_url_round_trip(settings)
    return settings


def _require_url_round_trip(settings: PostgresSettings) -> None:
    """Refuse values that Dagster would turn into a different server or database.

    Dagster joins the `postgres_db` values into a URL (dagster_postgres.utils.get_conn_string,
    which leaves `/` and a database name unquoted) and SQLAlchemy parses it back; psycopg2 in
    `require_postgres` takes them as they are. A value that does not survive the round trip
    passed that check and then sent Dagster elsewhere: a socket directory as host became the
    default socket and a database named "tmp/...:5432/dagster", a database "d%41b" became
    "dAb", "::1" a ValueError after the checks passed. The URL is never shown: it holds the
    password."""
    if _round_trips(settings):
        return
    if settings.host.startswith("/"):
        raise ConfigError(
            f"{HOST} is a socket directory ({settings.host}), which Dagster's PostgreSQL "
            "storage cannot connect through: set it to the server's host name or address "
            "(e.g. localhost or 127.0.0.1) and allow password logins over TCP"
        )
    if ":" in settings.host and settings.address == settings.host:
        raise ConfigError(
            f"{HOST} is the IPv6 address {settings.host}, which Dagster would read as host "
            f"and port: write it in brackets ({HOST}=[{settings.host}]) or use a host name"
        )
    # Which value breaks the URL: each one alone among plain others.
    plain = PostgresSettings(host="localhost", port=settings.port, user="u", db="d", password="p")
    alone = {
        USER: replace(plain, user=settings.user),
        DB: replace(plain, db=settings.db),
        PASSWORD: replace(plain, password=settings.password),
        HOST: replace(plain, host=settings.host),
    }
    wrong = [name for name, single in alone.items() if not _round_trips(single)] or [HOST]
    raise ConfigError(
        f"{' and '.join(wrong)} {'holds' if len(wrong) == 1 else 'hold'} characters that "
        "Dagster's PostgreSQL connection URL does not carry (such as `/`, `?` or `%` in a "
        "user or database name), so Dagster would connect somewhere else than configured: "
        "use a name without them"
    )


def _round_trips(settings: PostgresSettings) -> bool:
    """Whether the URL Dagster builds from `settings` parses back to the same values."""
    from dagster_postgres.utils import get_conn_string
    from sqlalchemy.engine import make_url

    text = get_conn_string(
        username=settings.user,
        password=settings.password,
        hostname=settings.host,
        db_name=settings.db,
        port=str(settings.port),
        scheme=_SCHEME,
    )
    try:
        url = make_url(text)
    except ValueError:  # e.g. an unbracketed IPv6 address read as host:port
        return False
    return (url.host, url.port, url.username, url.database, url.password or "") == (
        settings.address,
        settings.port,
        settings.user,
        settings.db,
        settings.password,
    )


def instance_yaml(repo_yaml: str, environ: Mapping[str, str]) -> str:
    """The dagster.yaml for DAGSTER_HOME: `repo_yaml` as it is, plus PostgreSQL storage when
    KOMMUNELAKE_POSTGRES_HOST is set. Only variables that are set are referenced: Dagster
    fails on a reference to an unset one, and its defaults (port 5432, no password, so
    libpq's PGPASSWORD or ~/.pgpass) are the ones wanted then."""
    if postgres_settings(environ) is None:
        return repo_yaml
    if "storage" in (yaml.safe_load(repo_yaml) or {}):
        raise ConfigError(
            f"the repository's dagster.yaml configures `storage:` itself, and {HOST} asks "
            "for PostgreSQL storage too: remove one of them"
        )
    references = [
        f"      {name}: {{env: {variable}}}"
        for name, variable in _FIELDS.items()
        if environ.get(variable)
    ]
    return "\n".join(
        [
            repo_yaml.rstrip("\n"),
            "",
            f"# Added by `kommunelake` because {HOST} is set: runs, event logs and schedules",
            "# in PostgreSQL. Each value is read from the environment when Dagster opens the",
            "# instance; psycopg2 is the driver installed (SQLAlchemy 2 would pick psycopg 3).",
            "storage:",
            "  postgres:",
            "    postgres_db:",
            *references,
            f"      scheme: {_SCHEME}",
            "",
        ]
    )


def require_postgres(settings: PostgresSettings) -> None:
    """Connect once, so a server that is down, a wrong password or a missing database is
    one line saying which variable to change, not a traceback from deep inside Dagster."""
    import psycopg2  # only where PostgreSQL is configured

    try:
        psycopg2.connect(
            host=settings.address,
            port=settings.port,
            user=settings.user,
            password=settings.password or None,  # None: libpq's PGPASSWORD or ~/.pgpass
            dbname=settings.db,
            connect_timeout=_CONNECT_TIMEOUT,
        ).close()
    except psycopg2.OperationalError as error:
        raise ConfigError(_explain(settings, error)) from None


def _explain(settings: PostgresSettings, error: Exception) -> str:
    reason = one_line(error)
    head = f"cannot open the Dagster instance in PostgreSQL ({settings.where}): {reason}"
    if "authentication failed" in reason or "no password supplied" in reason:
        return f"{head}: check {USER} and {PASSWORD}"
    if f'database "{settings.db}" does not exist' in reason:
        return f"{head}: create the database (createdb {settings.db}) or correct {DB}"
    if f'role "{settings.user}" does not exist' in reason:
        return f"{head}: create the role or correct {USER}"
    if "pg_hba.conf" in reason:  # the server is up and answered: it refuses this login
        return (
            f"{head}: the server does not accept this host, user and database: allow them "
            f"in the server's pg_hba.conf, or correct {USER} and {DB}"
        )
    if "SSL" in reason:  # TLS is libpq's business: PGSSLMODE, PGSSLROOTCERT, ...
        return f"{head}: check the server's TLS setup and PGSSLMODE"
    return f"{head}: start the server, or correct {HOST} and {PORT} (unset {HOST} for SQLite)"


def lost_postgres(error: BaseException, environ: Mapping[str, str]) -> str | None:
    """What to tell the user when `error` is the instance's PostgreSQL server going away
    after `require_postgres` found it (a restart, a network cut, a full disk): None when it
    is not, or the instance is SQLite.

    Dagster lets the driver's error through, wrapped by SQLAlchemy (with the SQL it ran) or
    by dagster-postgres ("too many retries for DB connection"): the CLI printed it as an
    internal error to report, not saying which server or what to do."""
    try:
        settings = postgres_settings(environ)
    except ConfigError:  # a command that never opened the instance (e.g. `sql`)
        return None
    if settings is None:
        return None
    import psycopg2  # only where PostgreSQL is configured

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for candidate in (current, getattr(current, "orig", None)):  # SQLAlchemy's wrapped one
            if isinstance(candidate, psycopg2.OperationalError | psycopg2.InterfaceError):
                return (
                    f"lost the Dagster instance in PostgreSQL ({settings.where}) while the "
                    f"command ran: {one_line(candidate)}: check that the server is up and "
                    "reachable, then run the command again (a load cut off leaves no half "
                    "batch, and the next load marks its run failed)"
                )
        current = current.__cause__ or current.__context__
    return None


def initialize_instance(dagster_home: Path) -> None:
    """Open the Dagster instance in `dagster_home` once, holding a lock on the folder.

    The first opening of a fresh home creates its SQLite storages and stamps their alembic
    version; several `kommunelake load` processes started together did that at once and left
    two versions stamped, after which every command on the home failed ("more than one head
    present"). Under the lock the first process creates them and the others find them made.
    The kernel drops the lock of a killed process, so a crash never blocks the home."""
    import dagster as dg

    handle = os.open(dagster_home, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        instance = dg.DagsterInstance.get()
        try:
            instance.get_runs(limit=1)  # run storage
            instance.all_instigator_state()  # schedule storage
        finally:
            instance.dispose()
    finally:
        os.close(handle)  # releases the lock
