"""PostgreSQL instance storage: with KOMMUNELAKE_POSTGRES_* set, `kommunelake` keeps runs,
event logs and schedules in PostgreSQL, for a load, for abandoned-run detection and for the
pools the run queue uses; without them the instance is SQLite under the home, as before.

Every test runs against a real server (tests/postgres.py), each in a database of its own."""

from __future__ import annotations

import shutil
import socket
import subprocess
import uuid
from pathlib import Path

import dagster as dg
import pytest

from connectors.demo import generate
from lake.home import Home
from pipelines import instance as pg
from pipelines.abandoned_runs import WORKER_TAG
from pipelines.cli import main, prepare
from tests.conftest import TEST_KEY, new_instance_database
from tests.helpers import kill_load_once_started, wait_until
from tests.postgres import PostgresServer, running_postgres

REPO = Path(__file__).resolve().parents[2]
SELECT = "key:silver/cpr_persons"


@pytest.fixture
def demo_home(tmp_path: Path, monkeypatch) -> Home:
    """A home with the demo's drop files and a pseudonym key, not yet prepared."""
    for name in ("KOMMUNELAKE_HOME", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KOMMUNELAKE_PSEUDONYM_KEY", TEST_KEY.decode())
    home = Home(tmp_path / "home")
    generate(home.root, persons=300, seed=7)
    return home


def _sqlite_files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file() and _is_sqlite(path)]


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(16) == b"SQLite format 3\0"


def _rows(server: PostgresServer, db: str, query: str, *params: object) -> list[tuple]:
    connection = server.connect(db)
    try:
        with connection.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchall()
    finally:
        connection.close()


def _started_runs(server: PostgresServer, db: str) -> list[tuple]:
    # Dagster creates its tables when the load opens the instance: until then, no runs.
    if _rows(server, db, "select to_regclass('runs')") == [(None,)]:
        return []
    return _rows(server, db, "select run_id from runs where status = 'STARTED'")


def test_without_the_host_variable_the_instance_is_sqlite_under_the_home(
    tmp_path: Path, monkeypatch
) -> None:
    for variable in (pg.HOST, pg.PORT, pg.USER, pg.PASSWORD, pg.DB, "DAGSTER_HOME"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("KOMMUNELAKE_PSEUDONYM_KEY", TEST_KEY.decode())
    home = Home(tmp_path / "home")
    prepare(home)
    written = home.dagster_home / "dagster.yaml"
    assert written.read_bytes() == (REPO / "dagster.yaml").read_bytes()
    with dg.DagsterInstance.from_config(str(home.dagster_home)) as instance:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"


def test_a_load_keeps_its_run_and_events_in_postgres_and_no_password_on_disk(
    demo_home: Home, postgres_server: PostgresServer, postgres_instance: str
) -> None:
    assert main(["load", "--home", str(demo_home.root), "--select", SELECT]) == 0

    written = (demo_home.dagster_home / "dagster.yaml").read_text()
    assert postgres_server.password not in written
    assert f"password: {{env: {pg.PASSWORD}}}" in written
    assert "scheme: postgresql+psycopg2" in written
    # Read back through Dagster, on the home's own instance config ...
    with dg.DagsterInstance.from_config(str(demo_home.dagster_home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        [run] = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        [materialization] = instance.fetch_materializations(
            dg.AssetKey(["silver", "cpr_persons"]), limit=10
        ).records
        assert materialization.run_id == run.run_id
    # ... and straight from the database.
    db = postgres_instance
    assert _rows(postgres_server, db, "select run_id, status from runs") == [
        (run.run_id, "SUCCESS")
    ]
    [(events,)] = _rows(
        postgres_server, db, "select count(*) from event_logs where run_id = %s", run.run_id
    )
    assert events > 10
    assert _sqlite_files(demo_home.dagster_home) == []


@pytest.mark.integration
def test_a_killed_load_is_failed_by_the_next_load_on_postgres(
    demo_home: Home, postgres_server: PostgresServer, postgres_instance: str, capsys
) -> None:
    """pipelines/abandoned_runs.py reads the killed run and its worker tag back from
    PostgreSQL and marks it failed there, so the queue would not wait on it."""
    # The child inherits KOMMUNELAKE_POSTGRES_* from this test's environment.
    pid, started = kill_load_once_started(
        demo_home,
        SELECT,
        lambda: _started_runs(postgres_server, postgres_instance),
        "the load's run to start in PostgreSQL",
        90,
    )
    [(killed,)] = started

    capsys.readouterr()
    assert main(["load", "--home", str(demo_home.root), "--select", SELECT]) == 0
    out = capsys.readouterr().out
    assert f"earlier run {killed}: The kommunelake process that ran it (pid {pid} " in out
    with dg.DagsterInstance.from_config(str(demo_home.dagster_home)) as instance:
        record = instance.get_run_record_by_id(killed)
        assert record is not None
        assert record.dagster_run.status == dg.DagsterRunStatus.FAILURE
        assert record.dagster_run.tags[WORKER_TAG].split(":")[1] == str(pid)
        [failure] = instance.all_logs(killed, of_type=dg.DagsterEventType.RUN_FAILURE)
        assert "killed or crashed" in (failure.message or "")
    statuses = _rows(postgres_server, postgres_instance, "select status from runs order by id")
    assert statuses == [("FAILURE",), ("SUCCESS",)]
    assert _sqlite_files(demo_home.dagster_home) == []


def test_the_postgres_instance_keeps_the_queue_and_one_slot_per_pool(
    tmp_path: Path, monkeypatch, postgres_server: PostgresServer, postgres_instance: str
) -> None:
    """The run queue's limits from dagster.yaml hold on PostgreSQL storage, and a pool it
    meets for the first time gets its one slot there (the SQLite twin is in
    test_definitions.py)."""
    monkeypatch.setenv("KOMMUNELAKE_PSEUDONYM_KEY", TEST_KEY.decode())
    home = Home(tmp_path / "home")
    prepare(home)
    with dg.DagsterInstance.from_config(str(home.dagster_home)) as instance:
        config = instance.get_concurrency_config()
        assert config.run_queue_config is not None
        assert config.run_queue_config.max_concurrent_runs == 1
        assert config.pool_config.default_pool_limit == 1
        assert config.pool_config.pool_granularity is not None
        assert config.pool_config.pool_granularity.value == "run"
        storage = instance.event_log_storage
        assert type(storage).__name__ == "PostgresEventLogStorage"
        assert storage.supports_global_concurrency_limits
        storage.initialize_concurrency_limit_to_default("silver/sick_leave")
        assert storage.get_concurrency_info("silver/sick_leave").slot_count == 1
    rows = _rows(
        postgres_server, postgres_instance, "select concurrency_key from concurrency_limits"
    )
    assert rows == [("silver/sick_leave",)]


@pytest.mark.parametrize(
    ("case", "named"),
    [
        pytest.param("no-server", [pg.HOST, pg.PORT], id="no-server-on-the-port"),
        pytest.param("wrong-password", [pg.USER, pg.PASSWORD], id="wrong-password"),
        pytest.param("no-database", [pg.DB], id="no-such-database"),
    ],
)
def test_a_server_that_cannot_be_used_is_one_line_naming_the_variable(
    demo_home: Home,
    postgres_server: PostgresServer,
    postgres_instance: str,
    monkeypatch,
    capsys,
    case: str,
    named: list[str],
) -> None:
    if case == "no-server":
        monkeypatch.setenv(pg.PORT, str(_closed_port()))
    elif case == "wrong-password":
        monkeypatch.setenv(pg.PASSWORD, "not-the-password")
    else:
        monkeypatch.setenv(pg.DB, "no_such_database")
    assert main(["load", "--home", str(demo_home.root), "--select", SELECT]) == 1
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert line.startswith("kommunelake load: cannot open the Dagster instance in PostgreSQL")
    assert all(variable in line for variable in named), line
    assert "Traceback" not in captured.err
    assert "not-the-password" not in captured.err
    assert not (demo_home.dagster_home / "dagster.yaml").exists()  # nothing ran


def test_a_login_the_server_refuses_by_pg_hba_is_not_told_to_start_the_server(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    """The server is up and refuses the host/user/database by its pg_hba.conf (a new
    application host, say): this said "start the server, or correct ..._HOST and _PORT"."""
    with running_postgres() as server:
        assert server.data is not None
        rules = server.data / "pg_hba.conf"
        rules.write_text(f"host all refused {server.host}/32 reject\n" + rules.read_text())
        _reload_rules(server)
        for variable, value in {
            pg.HOST: server.host,
            pg.PORT: str(server.port),
            pg.USER: "refused",
            pg.PASSWORD: "any",
            pg.DB: "postgres",
        }.items():
            monkeypatch.setenv(variable, value)
        monkeypatch.setenv("KOMMUNELAKE_PSEUDONYM_KEY", TEST_KEY.decode())
        assert main(["load", "--home", str(tmp_path / "home")]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert "pg_hba.conf rejects connection" in line, line
    assert "start the server" not in line
    assert line.endswith(
        f"allow them in the server's pg_hba.conf, or correct {pg.USER} and {pg.DB}"
    )


def _reload_rules(server: PostgresServer) -> None:
    """`pg_ctl reload` only signals the server: wait until a login sees the new rules."""
    import psycopg2

    server.reload()

    def refused() -> bool:
        try:
            psycopg2.connect(
                host=server.host, port=server.port, user="refused", password="any"
            ).close()
        except psycopg2.OperationalError as error:
            return "pg_hba.conf" in str(error)
        return False

    wait_until(refused, "the server to read pg_hba.conf", timeout=30)


def test_a_host_without_user_or_database_says_which_variable_is_missing(
    demo_home: Home, monkeypatch, capsys
) -> None:
    monkeypatch.setenv(pg.HOST, "127.0.0.1")
    monkeypatch.delenv(pg.USER, raising=False)
    monkeypatch.delenv(pg.DB, raising=False)
    assert main(["load", "--home", str(demo_home.root)]) == 1
    err = capsys.readouterr().err
    assert f"{pg.USER} and {pg.DB} are not" in err, err


def test_a_server_lost_during_a_load_is_one_line_saying_where_and_what_to_do(
    demo_home: Home, monkeypatch, capsys
) -> None:
    """The server answered the check before the load and then went away (a restart, a
    network cut): this was "internal error: OperationalError: ... [SQL: ...] (... report
    it)", naming neither the server nor what to do. A server of its own: this one stops."""
    import pipelines.abandoned_runs

    with running_postgres() as server:
        new_instance_database(server, monkeypatch)
        # The load has opened its instance; the server goes before the run is recorded.
        fail_abandoned_runs = pipelines.abandoned_runs.fail_abandoned_runs

        def server_gone_first(*args, **kwargs):
            server.stop()
            return fail_abandoned_runs(*args, **kwargs)

        monkeypatch.setattr(pipelines.abandoned_runs, "fail_abandoned_runs", server_gone_first)
        assert main(["load", "--home", str(demo_home.root), "--select", SELECT]) == 1
    err = capsys.readouterr().err
    [line] = err.splitlines()
    assert line.startswith("kommunelake load: lost the Dagster instance in PostgreSQL"), line
    assert f"{server.host}:{server.port}" in line
    assert "run the command again" in line
    assert "internal error" not in line
    assert server.password not in err


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        pytest.param(pg.HOST, "/var/run/postgresql", "socket directory", id="socket-directory"),
        pytest.param(pg.HOST, "::1", f"{pg.HOST}=[::1]", id="ipv6-without-brackets"),
        pytest.param(pg.DB, "dag?ster", pg.DB, id="question-mark-in-database"),
        pytest.param(pg.DB, "d%41b", pg.DB, id="percent-escape-in-database"),
        pytest.param(pg.USER, "team/etl", pg.USER, id="slash-in-user"),
    ],
)
def test_a_value_dagster_would_send_elsewhere_is_refused_before_anything_runs(
    tmp_path: Path, monkeypatch, capsys, variable: str, value: str, says: str
) -> None:
    """psycopg2 takes the values as they are, Dagster as a URL it joins and SQLAlchemy
    parses: these passed the connection check and then sent Dagster to another database or
    server (or failed after a minute of retries as an internal error)."""
    password = "s3cret-" + "x" * 8
    for name, setting in {
        pg.HOST: "127.0.0.1",
        pg.PORT: "5432",
        pg.USER: "dagster",
        pg.PASSWORD: password,
        pg.DB: "dagster",
        variable: value,
    }.items():
        monkeypatch.setenv(name, setting)
    monkeypatch.setenv("KOMMUNELAKE_PSEUDONYM_KEY", TEST_KEY.decode())
    home = Home(tmp_path / "home")
    assert main(["load", "--home", str(home.root)]) == 1
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert line.startswith(f"kommunelake load: {variable}"), line
    assert says in line, line
    assert password not in captured.err
    assert not (home.dagster_home / "dagster.yaml").exists()  # nothing ran


def test_an_ipv6_address_in_brackets_reaches_libpq_without_them() -> None:
    settings = pg.postgres_settings({pg.HOST: "[::1]", pg.USER: "dagster", pg.DB: "dagster"})
    assert settings is not None
    assert settings.address == "::1"


def test_a_password_full_of_url_characters_opens_the_instance(
    tmp_path: Path, monkeypatch, postgres_server: PostgresServer
) -> None:
    """`@ : / % # ?` in the password survive Dagster's URL (it quotes the password)."""
    password = "p@ss:w/rd%2F#?x"
    name = f"dagster_{uuid.uuid4().hex[:12]}"
    role = f"role_{name}"
    connection = postgres_server.connect()
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE ROLE {role} LOGIN PASSWORD %s", (password,))
            cursor.execute(f"CREATE DATABASE {name} OWNER {role}")
    finally:
        connection.close()
    for variable, value in {
        pg.HOST: postgres_server.host,
        pg.PORT: str(postgres_server.port),
        pg.USER: role,
        pg.PASSWORD: password,
        pg.DB: name,
    }.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setenv("KOMMUNELAKE_PSEUDONYM_KEY", TEST_KEY.decode())
    home = Home(tmp_path / "home")
    prepare(home)
    assert password not in (home.dagster_home / "dagster.yaml").read_text()
    with dg.DagsterInstance.from_config(str(home.dagster_home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert instance.get_runs() == []


def test_a_dotenv_file_holding_the_password_is_kept_out_of_git(tmp_path: Path) -> None:
    """README and .env.example have `dagster dev` read the variables, the PostgreSQL
    password among them, from a `.env` file in the checkout: `git add -A` committed it."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a git checkout of the repository")
    ignored = subprocess.run(
        ["git", "-C", str(REPO), "check-ignore", "--no-index", "--quiet", ".env"], check=False
    )
    assert ignored.returncode == 0, ".env is not ignored by the repository's .gitignore"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the socket is
