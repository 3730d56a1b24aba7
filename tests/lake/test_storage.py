"""The lake on local disk, S3 (moto) and Azure (Azurite): locations, credentials, landing,
Delta commits, DuckDB serving, and the refusal of non-atomic configurations."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import multiprocessing
import os
from pathlib import Path, PurePosixPath

import polars as pl
import pyarrow as pa
import pytest
from deltalake import CommitProperties, DeltaTable, write_deltalake
from pyarrow import fs

from lake import atomicity, duck, maintenance, storage
from lake.errors import ConfigError, LakeError, one_line
from lake.home import Home, resolve_home
from lake.landing import HashCache, land, local_copy, manifest, read_landed
from tests.helpers import land_path
from tests.lake import objectstores


def _skip_without_extension(name: str) -> None:
    if duck.extension_path(name) is None:
        pytest.skip(
            f"duckdb-ext-{name} is not installed: the lead adds "
            f"`duckdb-ext-{name}==1.4.4.20260205` to pyproject.toml (see lake/duck.py)"
        )


# --- locations and credentials (pure) --------------------------------------------------------


def test_lake_uris_parse_into_store_container_and_prefix() -> None:
    s3 = storage.parse_lake_uri("s3://kommune-lake/prod/")
    assert (s3.kind, s3.container, s3.prefix, s3.uri) == (
        "s3",
        "kommune-lake",
        "prod",
        "s3://kommune-lake/prod",
    )
    abfss = storage.parse_lake_uri("abfss://lake@aarhusdata.dfs.core.windows.net/a/b")
    assert (abfss.kind, abfss.container, abfss.account, abfss.prefix) == (
        "azure",
        "lake",
        "aarhusdata",
        "a/b",
    )
    assert storage.parse_lake_uri("az://lake").path == "lake"
    assert storage.parse_lake_uri("file:///srv/lake").uri == "/srv/lake"
    assert storage.parse_lake_uri("file://localhost/srv/lake").uri == "/srv/lake"
    assert not storage.parse_lake_uri("/srv/lake").is_remote
    assert storage.join_uri("s3://b/p", "silver", "x") == "s3://b/p/silver/x"
    assert storage.join_uri("/srv/lake", "silver", "x") == "/srv/lake/silver/x"


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("gs://bucket/lake", "unsupported scheme"),
        ("s3://KEY:SECRET@bucket/lake", "credentials do not belong"),
        ("s3:///lake", "no bucket"),
        ("s3://bucket/lake?versionId=1", "no ?query"),
        ("file://nas01/lake", "names a host"),
    ],
)
def test_bad_lake_uris_are_refused_with_what_to_do(uri: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says.replace("?", r"\?")) as error:
        storage.parse_lake_uri(uri)
    assert "SECRET" not in str(error.value)


def test_home_keeps_its_local_layout_by_default(tmp_path) -> None:
    home = Home(tmp_path / "home")
    assert not home.is_remote
    assert home.lake == tmp_path / "home" / "lake"
    assert home.table_uri("silver", "x") == str(tmp_path / "home" / "lake" / "silver" / "x")
    assert home.manifest_uri == str(home.landing / "_manifest")
    assert home.runs_uri == str(home.lake / "quality" / "runs")
    assert home.storage_options() == {}
    moved = dataclasses.replace(home, root=tmp_path / "elsewhere")
    assert moved.lake == tmp_path / "elsewhere" / "lake"  # the default lake follows the root


def test_home_builds_object_store_uris_from_the_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KOMMUNELAKE_LAKE_URI", "s3://kommune-lake/prod/")
    home = resolve_home(tmp_path)
    assert home.is_remote and home.lake_root == "s3://kommune-lake/prod"
    assert home.table_uri("silver", "sick_leave") == "s3://kommune-lake/prod/silver/sick_leave"
    assert home.manifest_uri == "s3://kommune-lake/prod/landing/_manifest"
    assert home.landing_uri == "s3://kommune-lake/prod/landing"
    assert home.runs_uri == "s3://kommune-lake/prod/quality/runs"
    assert home.serving_db == tmp_path / "serving" / "lake.duckdb"  # serving stays local
    with pytest.raises(ConfigError, match="object storage"):
        _ = home.lake
    assert resolve_home(tmp_path, lake_uri="az://c/p").table_uri("gold", "g") == "az://c/p/gold/g"


def test_storage_options_come_from_standard_variables_and_never_print() -> None:
    env = {
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "very-secret",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_REGION": "eu-north-1",
        "AZURE_STORAGE_ACCOUNT_KEY": "azure-secret",
        "HOME": "/root",
    }
    options = storage.storage_options("s3://b/p", env)
    assert options == {
        "aws_access_key_id": "AKIAEXAMPLE",
        "aws_secret_access_key": "very-secret",
        "aws_endpoint_url": "http://127.0.0.1:9000",
        "aws_region": "eu-north-1",
    }
    assert "very-secret" not in repr(options) and "very-secret" not in f"{options}"
    azure = storage.storage_options("abfss://c@acct.dfs.core.windows.net/p", env)
    assert azure == {
        "azure_storage_account_key": "azure-secret",
        "azure_storage_account_name": "acct",
    }
    assert storage.storage_options("/srv/lake", env) == {}


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AWS_S3_ALLOW_UNSAFE_RENAME", "true"),
        ("AWS_S3_LOCKING_PROVIDER", "dynamodb"),
        ("DELTA_DYNAMO_TABLE_NAME", "delta_log"),
        ("AWS_CONDITIONAL_PUT", "disabled"),
    ],
)
def test_old_style_unsafe_s3_settings_are_refused(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"{variable}.*unset {variable}"):
        storage.storage_options("s3://b/p", {variable: value})
    storage.storage_options("az://c/p", {variable: value})  # not an S3 lake: irrelevant


def test_unsafe_rename_switched_off_is_not_an_error() -> None:
    storage.check_s3_settings({"AWS_S3_ALLOW_UNSAFE_RENAME": "false"})


def test_tables_are_listed_per_layer_on_local_disk(home: Home) -> None:
    uri = home.table_uri("silver", "sick_leave")
    write_deltalake(uri, pl.DataFrame({"a": [1]}).to_arrow())
    Path(home.table_uri("silver", "not_a_table")).mkdir(parents=True)
    assert storage.list_tables(home.layer_uri("silver")) == {"sick_leave": uri}
    assert storage.list_tables(home.layer_uri("gold")) == {}


# --- S3 (moto) -------------------------------------------------------------------------------


def test_delta_table_written_and_read_through_home_on_s3(s3_home: Home) -> None:
    s3_home.require_atomic()  # moto honours If-None-Match: the probe passes
    uri = s3_home.table_uri("silver", "sick_leave")
    options = dict(s3_home.storage_options())
    frame = pl.DataFrame({"kommunekode": ["0101", "0751"], "days": [3, 5]})
    write_deltalake(uri, frame.to_arrow(), mode="append", storage_options=options)
    write_deltalake(uri, frame.head(1).to_arrow(), mode="append", storage_options=options)
    assert DeltaTable(uri, storage_options=options).version() == 1
    back = pl.read_delta(uri, storage_options=options).sort("days")
    assert back["days"].to_list() == [3, 3, 5]
    assert storage.list_tables(s3_home.layer_uri("silver")) == {"sick_leave": uri}


def test_landing_on_s3_is_content_addressed_and_written_once(s3_home: Home, moto) -> None:
    data = "Fravær-ID;CPR\nF1;0101901234\n".encode("cp1252")
    sha = hashlib.sha256(data).hexdigest()

    def _land(name: str):
        return land(
            s3_home.landing_uri,
            s3_home.manifest_uri,
            dataset="sick_leave",
            source="drop",
            data=data,
            original_name=name,
            media_type="text/csv",
        )

    first, new1 = _land("monday.csv")
    second, new2 = _land("copy.CSV")
    assert (new1, new2) == (True, False)
    assert first.path == f"{s3_home.landing_uri}/sick_leave/{sha[:2]}/{sha}.csv"
    assert second.path == first.path and read_landed(first) == data
    assert [f.sha256 for f in manifest(s3_home.manifest_uri)] == [sha]
    assert storage.write_once(first.path, data) is False  # already there: no second PUT
    location = storage.parse_lake_uri(first.path)
    listed = objectstores.s3_client(moto).list_objects_v2(
        Bucket=location.container, Prefix="kommune/landing/sick_leave/"
    )
    assert [o["Key"] for o in listed["Contents"]] == [location.prefix]
    assert not (Path(s3_home.root) / "lake").exists()  # nothing went to local disk


def test_duckdb_reads_delta_on_s3_with_a_secret_from_the_same_options(s3_home: Home) -> None:
    _skip_without_extension("httpfs")
    uri = s3_home.table_uri("gold", "population")
    frame = pl.DataFrame({"district": ["Midtbyen", "Lade"], "residents": [120, 80]})
    write_deltalake(uri, frame.to_arrow(), storage_options=dict(s3_home.storage_options()))
    con = duck.duck_connect(lake_uri=s3_home.lake_root)
    try:
        total = con.execute(f"SELECT sum(residents) FROM delta_scan({duck.sql_string(uri)})")
        assert total.fetchone() == (200,)
        secrets = con.execute("SELECT name, type FROM duckdb_secrets()").fetchall()
        assert secrets == [(duck.SECRET_NAME, "s3")]
    finally:
        con.close()


def test_a_serving_file_over_s3_read_without_the_lake_uri_says_what_to_set(
    s3_home: Home, monkeypatch
) -> None:
    # Without KOMMUNELAKE_LAKE_URI the connection had no secret, and the first query failed
    # with DuckDB's "IO Error: DeltaKernel ObjectStoreError ... PUT
    # http://169.254.169.254/latest/api/token ..." (the instance-metadata credential lookup).
    from lake import connect
    from lake.serving import build_serving

    frame = pl.DataFrame({"district": ["Sentrum"], "residents": [42]})
    write_deltalake(
        s3_home.table_uri("gold", "population"),
        frame.to_arrow(),
        storage_options=dict(s3_home.storage_options()),
    )
    build_serving(s3_home, {})
    monkeypatch.delenv("KOMMUNELAKE_LAKE_URI")

    with pytest.raises(ConfigError) as error:
        connect(s3_home.root)

    message = str(error.value)
    assert f"KOMMUNELAKE_LAKE_URI={s3_home.lake_root}" in message and "\n" not in message
    assert "testing" not in message  # the AWS_* values are never shown


def test_the_sql_command_over_azure_with_a_wrong_key_says_what_to_check(
    azure_home: Home, monkeypatch, capsys
) -> None:
    # The serving file was fine, but the first query failed inside DuckDB with "IO Error:
    # DeltaKernel ObjectStoreError (8): ... 403 Forbidden: <?xml ...", naming no variable.
    from lake import connect
    from lake.serving import build_serving
    from pipelines.cli import main

    _skip_without_extension("azure")
    frame = pl.DataFrame({"district": ["Sentrum"], "residents": [42]})
    write_deltalake(
        azure_home.table_uri("gold", "population"),
        frame.to_arrow(),
        storage_options=dict(azure_home.storage_options()),
    )
    build_serving(azure_home, {})
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", "d3Jvbmc=")  # valid base64, wrong key
    monkeypatch.setattr(atomicity, "_checked", set())  # probed once per process otherwise

    code = main(["sql", "--home", str(azure_home.root), "SELECT * FROM gold.population"])
    with pytest.raises(ConfigError, match="Azure refused the credentials"):
        connect(azure_home.root)

    stderr = capsys.readouterr().err
    assert code == 1
    assert f"Azure lake at {azure_home.lake_root}: Azure refused the credentials" in stderr
    assert "<?xml" not in stderr and "DeltaKernel" not in stderr


def test_an_object_store_error_is_one_line_without_terminal_colours() -> None:
    # object_store's cause chain as deltalake raises it (seen on a cut-short S3 listing):
    # it reached `kommunelake load`'s summary and quality.runs as "[31m↳[0m".
    error = OSError(
        "Kernel error -> Generic S3 error\n   \x1b[31m↳\x1b[0m Error getting list response "
        "body\n    \x1b[31m↳\x1b[0m HTTP error\n     \x1b[31m↳\x1b[0m end of file before "
        "message length reached"
    )
    line = one_line(error)
    assert "\x1b" not in line and "[31m" not in line and "\n" not in line
    assert line.endswith("HTTP error ↳ end of file before message length reached")
    assert storage.store_failure(error) == (
        "Error getting list response body: HTTP error: end of file before message length reached"
    )
    assert storage.store_failure(OSError("Generic LocalFileSystem error: disk full")) is None


def _create_empty(uri: str, options: dict[str, str]) -> None:
    # Created first, as by an earlier load: two *first* commits race on the table's metadata,
    # and the loser fails loudly (CommitFailedError) rather than losing anything.
    schema = pa.schema([("worker", pa.int64()), ("i", pa.int64())])
    DeltaTable.create(uri, schema, storage_options=options)


def _append(uri: str, worker: int, count: int) -> None:
    # Each losing race costs deltalake a retry; on 2 busy cores 4 writers can use up the
    # default 15, which fails the write loudly (CommitFailedError), never silently.
    options = dict(storage.storage_options(uri))
    retries = CommitProperties(max_commit_retries=200)
    for i in range(count):
        row = pl.DataFrame({"worker": [worker], "i": [i]})
        write_deltalake(
            uri, row.to_arrow(), mode="append", storage_options=options, commit_properties=retries
        )


def test_four_processes_appending_on_s3_lose_nothing(s3_home: Home) -> None:
    uri = s3_home.table_uri("silver", "concurrent")
    options = dict(s3_home.storage_options())
    _create_empty(uri, options)
    spawn = multiprocessing.get_context("spawn")  # deltalake panics in forked children
    workers = [spawn.Process(target=_append, args=(uri, w, 10)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=240)
    assert [p.exitcode for p in workers] == [0, 0, 0, 0]
    rows = pl.read_delta(uri, storage_options=options)
    assert rows.height == 40
    assert rows.unique().height == 40
    assert DeltaTable(uri, storage_options=options).version() == 40


# --- Azure (Azurite) -------------------------------------------------------------------------


def test_delta_table_written_and_read_through_home_on_azure(azure_home: Home) -> None:
    uri = azure_home.table_uri("silver", "home_care_visits")
    options = dict(azure_home.storage_options())
    frame = pl.DataFrame({"visit": [1, 2, 3]})
    write_deltalake(uri, frame.to_arrow(), mode="append", storage_options=options)
    write_deltalake(uri, frame.head(1).to_arrow(), mode="append", storage_options=options)
    assert pl.read_delta(uri, storage_options=options)["visit"].sort().to_list() == [1, 1, 2, 3]
    assert storage.list_tables(azure_home.layer_uri("silver")) == {"home_care_visits": uri}
    azure_home.require_atomic()  # Azure: atomic by design, nothing to probe


def test_two_processes_appending_on_azure_lose_nothing(azure_home: Home) -> None:
    uri = azure_home.table_uri("silver", "concurrent")
    options = dict(azure_home.storage_options())
    _create_empty(uri, options)
    spawn = multiprocessing.get_context("spawn")
    workers = [spawn.Process(target=_append, args=(uri, w, 5)) for w in range(2)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=240)
    assert [p.exitcode for p in workers] == [0, 0]
    rows = pl.read_delta(uri, storage_options=options)
    assert rows.unique().height == 10
    assert DeltaTable(uri, storage_options=options).version() == 10


def _land_persons(home: Home):
    return land(
        home.landing_uri,
        home.manifest_uri,
        dataset="cpr_persons",
        source="drop",
        data=b"cpr;navn\n",
        original_name="persons.csv",
        media_type="text/csv",
    )


def test_landing_on_azure(azure_home: Home) -> None:
    landed, new = _land_persons(azure_home)
    assert new and landed.path.startswith(azure_home.landing_uri + "/cpr_persons/")
    assert read_landed(landed) == b"cpr;navn\n"
    assert len(manifest(azure_home.manifest_uri, "cpr_persons")) == 1


def _account_sas(question_mark: bool) -> str:
    """An account SAS for Azurite, as `az storage account generate-sas` prints it (no `?`)
    or as the portal's "SAS token" field shows it (with one)."""
    from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

    token = generate_account_sas(
        storage.EMULATOR_ACCOUNT,
        objectstores.EMULATOR_KEY,
        ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(read=True, write=True, delete=True, list=True, add=True, create=True),
        expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
    )
    return "?" + token if question_mark else token


@pytest.mark.parametrize("question_mark", [False, True], ids=["as-az-cli-prints-it", "with-?"])
def test_an_azure_lake_with_a_sas_token_lands_files(azurite, tmp_path, monkeypatch, question_mark):
    # pyarrow appends the token to the URL as it is: without its `?` every landing failed
    # with "ListBlobsByHierarchy failed ... [OutOfRangeInput] 400 The specified resource
    # name length is not within the permissible limits", while deltalake took either form.
    for name in [n for n in os.environ if n.startswith("AZURE")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", storage.EMULATOR_ACCOUNT)
    monkeypatch.setenv("AZURE_STORAGE_USE_EMULATOR", "true")
    monkeypatch.setenv("AZURITE_BLOB_STORAGE_URL", azurite.url)
    monkeypatch.setenv("AZURE_STORAGE_SAS_TOKEN", _account_sas(question_mark))
    container = objectstores.create_container(azurite)
    home = Home(tmp_path / "home", f"az://{container}/kommune")

    landed, new = _land_persons(home)

    assert new and read_landed(landed) == b"cpr;navn\n"
    assert len(manifest(home.manifest_uri, "cpr_persons")) == 1


def test_an_azure_lake_configured_by_a_connection_string_alone(azurite, tmp_path, monkeypatch):
    # The Azure SDKs' usual setting. object_store does not read it, so the lake was refused
    # with "Azure lake without an account: set AZURE_STORAGE_ACCOUNT_NAME".
    _skip_without_extension("azure")
    for name in [n for n in os.environ if n.startswith("AZURE")]:
        monkeypatch.delenv(name)
    for name in storage._CONNECTION_STRING_VARIABLES.values():
        # Unset here, and removed again after the test, which sets some of them.
        monkeypatch.setenv(name, "-")
        monkeypatch.delenv(name)
    # The emulator's own connection string (a cloud one names the account and key); its
    # address is AZURITE_BLOB_STORAGE_URL, read by deltalake, pyarrow and DuckDB alike.
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true")
    monkeypatch.setenv("AZURITE_BLOB_STORAGE_URL", azurite.url)
    monkeypatch.setattr(atomicity, "_checked", set())  # probed once per process otherwise
    container = objectstores.create_container(azurite)
    home = Home(tmp_path / "home", f"az://{container}/kommune")
    home.require_atomic()

    landed, new = _land_persons(home)  # pyarrow
    uri = home.table_uri("gold", "population")  # deltalake
    frame = pl.DataFrame({"district": ["Sentrum"], "residents": [42]})
    write_deltalake(uri, frame.to_arrow(), storage_options=dict(home.storage_options()))
    con = duck.duck_connect(lake_uri=home.lake_root)  # DuckDB
    try:
        rows = con.execute(f"SELECT * FROM delta_scan({duck.sql_string(uri)})").fetchall()
    finally:
        con.close()

    assert new and read_landed(landed) == b"cpr;navn\n"
    assert rows == [("Sentrum", 42)]
    assert any(
        k.startswith("kommune/gold/population/")
        for k in objectstores.azure_keys(azurite, container)
    )
    # Most Delta reads and writes pass no storage options and rely on the AZURE_* variables,
    # which the start check set from the connection string ("Account must be specified").
    quality = home.table_uri("quality", "runs")
    write_deltalake(quality, pl.DataFrame({"run": ["r1"]}).to_arrow())
    assert DeltaTable(quality).version() == 0
    assert os.environ["AZURE_STORAGE_USE_EMULATOR"] == "true"


def test_duckdb_reads_delta_on_azure(azure_home: Home) -> None:
    _skip_without_extension("azure")
    uri = azure_home.table_uri("gold", "population")
    frame = pl.DataFrame({"district": ["Sentrum"], "residents": [42]})
    write_deltalake(uri, frame.to_arrow(), storage_options=dict(azure_home.storage_options()))
    con = duck.duck_connect(lake_uri=azure_home.lake_root)
    try:
        rows = con.execute(f"SELECT * FROM delta_scan({duck.sql_string(uri)})").fetchall()
        assert rows == [("Sentrum", 42)]
    finally:
        con.close()


# --- files landed from a path, and parsed from a local copy ------------------------------------


def _land_path(home: Home, path: Path, dataset: str = "cpr_persons"):
    return land_path(home, path, dataset, HashCache(home.hash_cache(dataset)))


def test_a_large_file_is_streamed_to_s3_as_one_object(s3_home: Home, moto, tmp_path) -> None:
    source = tmp_path / "personer.csv"
    source.write_bytes(os.urandom(12 * 1024 * 1024))  # more than one upload part
    landed, new = _land_path(s3_home, source)
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    assert new and landed.path == f"{s3_home.landing_uri}/cpr_persons/{sha[:2]}/{sha}.csv"
    location = storage.parse_lake_uri(landed.path)
    head = objectstores.s3_client(moto).head_object(Bucket=location.container, Key=location.prefix)
    assert head["ContentLength"] == 12 * 1024 * 1024
    parts = head["ETag"].strip('"').partition("-")[2]
    assert int(parts) >= 2  # one completed multipart upload: the file was never one buffer
    assert read_landed(landed) == source.read_bytes()
    assert _land_path(s3_home, source) == (landed, False)
    assert not (s3_home.root / "lake").exists()


def test_a_copy_to_s3_that_does_not_match_its_hash_is_removed(s3_home: Home, tmp_path) -> None:
    source = tmp_path / "x.csv"
    source.write_bytes(b"a;b\n1;2\n")
    target = f"{s3_home.landing_uri}/x/00/{'0' * 64}.csv"
    with pytest.raises(storage.SourceChanged):
        storage.copy_once(source, target, sha256="0" * 64, size=8)
    assert storage.exists(target) is None


def test_a_remote_landing_is_parsed_from_the_unchanged_drop_file_or_a_download(
    s3_home: Home, monkeypatch
) -> None:
    original = s3_home.drop / "cpr_persons" / "personer.csv"
    original.parent.mkdir(parents=True)
    original.write_bytes(b"cpr;navn\n0101901234;Ane\n")
    landed, _ = _land_path(s3_home, original)

    with local_copy(landed, s3_home) as path:  # still in the drop folder: no download
        assert path == original

    downloads = []
    download = storage.download
    monkeypatch.setattr(storage, "download", lambda *a: downloads.append(a) or download(*a))
    original.write_bytes(b"cpr;navn\n0101901234;Bo\n")  # same size, other bytes: not used
    with local_copy(landed, s3_home) as path:
        assert path.is_relative_to(s3_home.scratch)
        assert path.name == PurePosixPath(landed.path).name  # the suffix the parser expects
        assert path.read_bytes() == b"cpr;navn\n0101901234;Ane\n"
    assert len(downloads) == 1 and not path.exists()  # deleted after parsing
    assert not list(s3_home.scratch.iterdir())


def test_a_drop_file_changed_while_it_is_parsed_fails_the_batch(s3_home: Home) -> None:
    original = s3_home.drop / "cpr_persons" / "personer.csv"
    original.parent.mkdir(parents=True)
    original.write_bytes(b"cpr;navn\n0101901234;Ane\n")
    landed, _ = _land_path(s3_home, original)
    with (
        pytest.raises(LakeError, match="changed while it was being parsed"),
        local_copy(landed, s3_home) as path,
    ):
        path.write_bytes(b"cpr;navn\n0101901234;Ane\n0202901234;Bo\n")


def test_a_file_lands_on_azure_and_is_downloaded_for_parsing(azure_home: Home, tmp_path) -> None:
    source = tmp_path / "besoeg.csv"
    source.write_bytes(b"visit;hours\n1;2,5\n")
    landed, new = _land_path(azure_home, source, "home_care_visits")
    assert new and landed.path.startswith(azure_home.landing_uri + "/home_care_visits/")
    assert read_landed(landed) == source.read_bytes()
    with local_copy(landed, azure_home) as path:  # not in the drop folder: downloaded
        assert path.is_relative_to(azure_home.scratch)
        assert path.read_bytes() == source.read_bytes()
    assert not path.exists()


@pytest.mark.parametrize("store", ["s3_home", "azure_home"])
def test_maintenance_compacts_checkpoints_and_vacuums_in_object_storage(request, store) -> None:
    home: Home = request.getfixturevalue(store)
    uri = home.table_uri("silver", "visits")
    options = dict(home.storage_options())
    for visit in range(4):
        write_deltalake(
            uri, pl.DataFrame({"visit": [visit]}).to_arrow(), mode="append", storage_options=options
        )
    report = maintenance.maintain(
        uri, retention_hours=0, allow_short=True, storage_options=home.storage_options()
    )
    assert (report.compaction.files_before, report.compaction.files_after) == (4, 1)
    assert report.checkpoint.checkpoint_created
    assert report.vacuum.files_deleted == 4 and report.vacuum.bytes_deleted > 0
    assert pl.read_delta(uri, storage_options=options)["visit"].sort().to_list() == [0, 1, 2, 3]
    filesystem, path = storage.filesystem(uri)
    parquet = [
        info.base_name
        for info in filesystem.get_file_info(fs.FileSelector(path, recursive=False))
        if info.base_name.endswith(".parquet")
    ]
    assert len(parquet) == 1  # the four small files are gone from the store
    checkpoints = filesystem.get_file_info(fs.FileSelector(f"{path}/_delta_log"))
    assert any(info.base_name.endswith(".checkpoint.parquet") for info in checkpoints)


def test_a_connection_string_fills_only_the_azure_variables_left_unset() -> None:
    env = {
        "AZURE_STORAGE_CONNECTION_STRING": (
            "DefaultEndpointsProtocol=https;AccountName=kommune;AccountKey=c2VjcmV0;"
            "BlobEndpoint=http://127.0.0.1:10000/kommune"
        ),
        "AZURE_STORAGE_ACCOUNT_KEY": "b3duLWtleQ==",  # the separate variable wins
    }
    storage.export_connection_string(env)

    assert env["AZURE_STORAGE_ACCOUNT_NAME"] == "kommune"
    assert env["AZURE_STORAGE_ACCOUNT_KEY"] == "b3duLWtleQ=="
    assert env["AZURE_STORAGE_ENDPOINT"] == "http://127.0.0.1:10000/kommune"
    assert env["AZURE_ALLOW_HTTP"] == "true"
    assert "AZURE_STORAGE_SAS_TOKEN" not in env
