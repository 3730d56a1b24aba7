"""Assets through dagster.materialize on a temporary home: blocking really blocks, and a
rejected file can be fixed by a new delivery or by a YAML change."""

from __future__ import annotations

import dataclasses

import dagster as dg
import polars as pl
import pytest
from deltalake import DeltaTable

from connectors.demo import generate
from lake import connect
from lake.home import Home
from lake.quality import runs
from pipelines.definitions import build_assets
from pipelines.delivery import pending_batches
from pipelines.factory import dataset_result
from pipelines.ingest import load_dataset
from pipelines.resources import lake_resource
from pipelines.specs import DatasetSpec, spec_by_name
from tests.conftest import TEST_KEY
from tests.helpers import redeliver_cpr
from tests.lake import objectstores
from tests.lake.commit_faults import ambiguous_commit_proxy

SILVER_CPR = dg.AssetKey(["silver", "cpr_persons"])
GOLD_POPULATION = dg.AssetKey(["gold", "population_by_district"])


@pytest.fixture
def demo_home(home: Home, monkeypatch, demo_apis) -> Home:
    generate(home.root, persons=400)
    monkeypatch.setenv("KOMMUNELAKE_HOME", str(home.root))
    monkeypatch.setenv("KOMMUNELAKE_PSEUDONYM_KEY", TEST_KEY.decode())
    return home


def _materialize(
    instance: dg.DagsterInstance, selection: list[dg.AssetKey] | None = None
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        build_assets(),
        selection=selection,
        resources={"lake": lake_resource()},
        instance=instance,
        raise_on_error=False,
    )


def test_schema_break_blocks_gold_and_keeps_other_datasets_loading(demo_home) -> None:
    redeliver_cpr(demo_home, "PNR;", "PERSONNR;")
    with dg.DagsterInstance.ephemeral() as instance:
        result = _materialize(instance)

        checks = {(e.asset_key, e.check_name): e for e in result.get_asset_check_evaluations()}
        schema = checks[(SILVER_CPR, "schema")]
        assert not schema.passed and schema.severity == dg.AssetCheckSeverity.ERROR
        assert not result.success  # a failed blocking check fails its step
        materialized = {e.asset_key for e in result.get_asset_materialization_events()}
        assert GOLD_POPULATION not in materialized  # blocked downstream, in the same run
        assert dg.AssetKey(["silver", "dar_addresses"]) in materialized
        assert not DeltaTable.is_deltatable(demo_home.table_uri("silver", "cpr_persons"))
        [rejected] = runs(demo_home, "cpr_persons").rows(named=True)
        assert rejected["status"] == "rejected"
        assert "cpr_personer.csv" in rejected["message"] and "PERSONNR" in rejected["message"]

        # The sender delivers a corrected file: it loads, and the stale rejected one stays put.
        redeliver_cpr(demo_home, "PERSONNR;", "PNR;", name="cpr_personer_v2.csv")
        result = _materialize(instance)
        assert result.success
        statuses = runs(demo_home, "cpr_persons")["status"].to_list()
        assert statuses == ["rejected", "loaded"]
        assert pending_batches(spec_by_name("cpr_persons"), demo_home) == []
        gold = [e.asset_key for e in result.get_asset_materialization_events()]
        assert GOLD_POPULATION in gold


def test_a_rejected_file_moves_aside_and_a_yaml_fix_loads_it_when_put_back(demo_home) -> None:
    redeliver_cpr(demo_home, "PNR;", "PERSONNR;")
    spec = spec_by_name("cpr_persons")
    [rejected] = load_dataset(spec, demo_home, TEST_KEY).batches
    assert rejected.status == "rejected"
    folder = demo_home.drop / "cpr_persons"
    assert not list(folder.glob("*.csv"))  # out of the drop folder, so not retried forever
    error = (folder / "rejected" / "cpr_personer.csv.error.txt").read_text()
    assert "missing required column(s) cpr" in error and "put the file back" in error
    assert load_dataset(spec, demo_home, TEST_KEY).batches == ()

    # The operator maps the renamed header in the YAML and puts the file back.
    (folder / "rejected" / "cpr_personer.csv").rename(folder / "cpr_personer.csv")
    fixed = dataclasses.replace(spec, columns={**spec.columns, "PERSONNR": "cpr"})
    [loaded] = load_dataset(fixed, demo_home, TEST_KEY).batches
    assert (loaded.status, loaded.batch_id) == ("loaded", rejected.batch_id)
    assert loaded.rows_valid > 300
    assert runs(demo_home, "cpr_persons")["status"].to_list() == ["rejected", "loaded"]


def test_a_rejected_file_sent_again_after_a_newer_load_is_moved_aside_with_its_reason(
    demo_home,
) -> None:
    redeliver_cpr(demo_home, "PNR;", "PERSONNR;")
    spec = spec_by_name("cpr_persons")
    [rejected] = load_dataset(spec, demo_home, TEST_KEY).batches
    folder = demo_home.drop / "cpr_persons"
    broken = (folder / "rejected" / "cpr_personer.csv").read_bytes()
    redeliver_cpr(demo_home, "PERSONNR;", "PNR;", name="cpr_personer_v2.csv")
    [loaded] = load_dataset(spec, demo_home, TEST_KEY).batches
    assert (rejected.status, loaded.status) == ("rejected", "loaded")

    (folder / "igen.csv").write_bytes(broken)  # the sender sends the old export again
    assert load_dataset(spec, demo_home, TEST_KEY).batches == ()  # not over the newer data
    assert not (folder / "igen.csv").exists()  # and not left waiting, unexplained
    error = (folder / "rejected" / "igen.csv.error.txt").read_text()
    assert "missing required column(s) cpr" in error and "rejected before" in error


def test_a_file_without_its_header_is_rejected_without_leaking_identifiers(
    demo_home, caplog
) -> None:
    folder = demo_home.drop / "cpr_persons"
    lines = (folder / "cpr_personer.csv").read_text().splitlines(keepends=True)
    (folder / "cpr_personer.csv").write_text("".join(lines[1:]))  # header row missing
    first_cpr = lines[1].split(";")[0]

    with dg.DagsterInstance.ephemeral() as instance:
        result = _materialize(instance, [SILVER_CPR])
        # Everything the run stored in the instance: what the UI shows afterwards.
        stored = "".join(
            str(r.event_log_entry) for r in instance.get_records_for_run(result.run_id).records
        )
    [rejected] = runs(demo_home, "cpr_persons").rows(named=True)
    assert rejected["status"] == "rejected"
    assert "looks like data" in rejected["message"]
    first_name = lines[1].split(";")[1]
    assert "missing required column(s)" in stored
    for text in (
        rejected["message"],
        stored,
        caplog.text,
        str(result.get_asset_check_evaluations()),
    ):
        assert first_cpr not in text and f" {first_name}," not in text


def test_a_reference_to_a_dataset_not_loaded_yet_fails_its_check_saying_so(demo_home) -> None:
    """cpr_persons loaded alone on a new home: its address reference cannot be checked. It
    used to fail as a step with DuckDB's "Invalid table location"."""
    with dg.DagsterInstance.ephemeral() as instance:
        result = _materialize(instance, [SILVER_CPR])
    assert result.success
    [check] = [
        e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "references_dar_addresses"
    ]
    assert not check.passed
    assert "silver.dar_addresses has not been loaded yet" in check.description
    assert "key:silver/dar_addresses" in check.description


def test_automation_does_not_build_gold_from_a_blocked_dataset(demo_home) -> None:
    from pipelines.definitions import build_definitions

    defs = build_definitions()
    silver = dg.AssetSelection.key_prefixes(["silver"])
    home_care = dg.AssetKey(["gold", "home_care_hours_per_resident_65plus"])

    def load(selection=None) -> None:
        dg.materialize(
            build_assets(),
            selection=selection,
            resources={"lake": lake_resource()},
            instance=instance,
            raise_on_error=False,
        )

    with dg.DagsterInstance.ephemeral() as instance:
        load()  # a good first load of everything
        settled = dg.evaluate_automation_conditions(defs=defs, instance=instance)

        redeliver_cpr(demo_home, "PNR;", "PERSONNR;", name="cpr_personer_v2.csv")
        load(silver)  # a broken delivery: cpr_persons' blocking schema check fails
        blocked = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=settled.cursor
        )
        assert blocked.get_num_requested(GOLD_POPULATION) == 0
        assert blocked.get_num_requested(home_care) == 0

        redeliver_cpr(demo_home, "PERSONNR;", "PNR;", name="cpr_personer_v3.csv")
        load(silver)  # the corrected delivery
        fixed = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=blocked.cursor
        )
        assert fixed.get_num_requested(GOLD_POPULATION) == 1
        assert fixed.get_num_requested(home_care) == 1


def test_reload_releases_rows_quarantined_by_a_wrong_contract(demo_home) -> None:
    from lake.tables import table_version
    from pipelines.ingest import reload_batch

    fixed = spec_by_name("sick_leave")
    broken = dataclasses.replace(fixed, parse=dataclasses.replace(fixed.parse, date_formats=()))
    [first] = load_dataset(broken, demo_home, TEST_KEY).batches
    assert first.rows_quarantined > first.rows_valid  # dd-mm-yyyy dates all failed typing

    again = reload_batch(fixed, demo_home, TEST_KEY)
    assert again.batch_id == first.batch_id and again.rows_in == first.rows_in
    assert again.rows_quarantined < first.rows_quarantined / 5  # only the real defects remain
    quarantine = pl.read_delta(demo_home.table_uri("quarantine", "sick_leave"))
    assert quarantine["source_row"].n_unique() == again.rows_quarantined  # replaced, not added
    silver = pl.read_delta(demo_home.table_uri("silver", "sick_leave"))
    assert silver.height == again.rows_valid
    assert runs(demo_home, "sick_leave")["status"].to_list() == ["loaded", "loaded"]

    version = table_version(demo_home.table_uri("silver", "sick_leave"))
    reload_batch(fixed, demo_home, TEST_KEY)  # a second reload is a new, idempotent attempt
    assert pl.read_delta(demo_home.table_uri("silver", "sick_leave")).height == silver.height
    assert table_version(demo_home.table_uri("silver", "sick_leave")) == version + 1


def test_reload_refuses_an_old_snapshot_batch(demo_home) -> None:
    from lake.errors import LakeError
    from pipelines.ingest import reload_batch

    spec = spec_by_name("cpr_persons")
    [old] = load_dataset(spec, demo_home, TEST_KEY).batches
    redeliver_cpr(demo_home, "FORNAVN", "FORNAVN", name="cpr_personer_v2.csv")
    path = demo_home.drop / "cpr_persons" / "cpr_personer_v2.csv"
    path.write_text(path.read_text() + path.read_text().splitlines()[1] + "\n")  # new bytes
    load_dataset(spec, demo_home, TEST_KEY)
    with pytest.raises(LakeError, match="not the newest load"):
        reload_batch(spec, demo_home, TEST_KEY, old.batch_id)


def test_reload_refuses_an_old_scd2_batch_before_touching_its_quarantine(demo_home) -> None:
    # Applied, a changed row would open a version before the history's newest: write_batch
    # refuses that, but only after the batch's quarantine rows were replaced.
    from lake.errors import LakeError
    from lake.tables import table_version
    from pipelines.ingest import reload_batch

    spec = dataclasses.replace(spec_by_name("cpr_persons"), load_mode="scd2")
    [old] = load_dataset(spec, demo_home, TEST_KEY).batches
    redeliver_cpr(demo_home, "FORNAVN", "FORNAVN", name="cpr_personer_v2.csv")
    path = demo_home.drop / "cpr_persons" / "cpr_personer_v2.csv"
    path.write_text(path.read_text() + path.read_text().splitlines()[1] + "\n")  # new bytes
    load_dataset(spec, demo_home, TEST_KEY)
    quarantine = table_version(demo_home.table_uri("quarantine", "cpr_persons"))
    silver = table_version(demo_home.table_uri("silver", "cpr_persons"))

    with pytest.raises(LakeError, match="not the newest load of this scd2 dataset"):
        reload_batch(spec, demo_home, TEST_KEY, old.batch_id)

    assert table_version(demo_home.table_uri("quarantine", "cpr_persons")) == quarantine
    assert table_version(demo_home.table_uri("silver", "cpr_persons")) == silver


def test_evolve_adds_a_new_column_to_silver_and_freeze_rejects_it(demo_home) -> None:
    spec = dataclasses.replace(spec_by_name("sick_leave"), schema_drift="evolve")
    folder = demo_home.drop / "sick_leave"
    [first] = load_dataset(spec, demo_home, TEST_KEY).batches
    lines = next(folder.glob("*.csv")).read_bytes().decode("cp1252").splitlines()
    widened = [lines[0] + ";Afdelingskode"] + [line + ";ØK1" for line in lines[1:]]
    (folder / "sygefravaer_v2.csv").write_bytes(("\r\n".join(widened) + "\r\n").encode("cp1252"))

    [second] = load_dataset(spec, demo_home, TEST_KEY).batches
    assert second.drift_decision == "added: afdelingskode"
    silver = pl.read_delta(demo_home.table_uri("silver", "sick_leave"))
    # The widened file has the same keys, so the merge updated every row with the new column.
    assert silver.height == first.rows_valid and set(silver["afdelingskode"]) == {"ØK1"}
    assert set(silver["_batch_id"]) == {second.batch_id}
    assert runs(demo_home, "sick_leave")["drift_decision"].to_list() == [
        "none",
        "added: afdelingskode",
    ]

    frozen = dataclasses.replace(spec, schema_drift="freeze")
    (folder / "sygefravaer_v3.csv").write_bytes(
        ("\r\n".join(widened[:10]) + "\r\n").encode("cp1252")
    )
    [third] = load_dataset(frozen, demo_home, TEST_KEY).batches
    assert third.status == "rejected" and "schema_drift is freeze" in third.message
    assert third.drift_decision == "rejected: Afdelingskode"
    assert runs(demo_home, "sick_leave")["drift_decision"][-1] == "rejected: Afdelingskode"


def _evolve_then_narrow(home: Home) -> DatasetSpec:
    """sick_leave loaded under evolve from an export with a new column `Afdelingskode`, then
    the next export (back to the old layout, 10 rows) dropped: the spec that loaded."""
    spec = dataclasses.replace(spec_by_name("sick_leave"), schema_drift="evolve")
    folder = home.drop / "sick_leave"
    original = next(folder.glob("*.csv"))
    lines = original.read_bytes().decode("cp1252").splitlines()
    widened = [lines[0] + ";Afdelingskode"] + [line + ";ØK1" for line in lines[1:]]
    original.write_bytes(("\r\n".join(widened) + "\r\n").encode("cp1252"))
    [first] = load_dataset(spec, home, TEST_KEY).batches
    assert first.drift_decision == "added: afdelingskode"
    (folder / "sygefravaer_v2.csv").write_bytes(("\r\n".join(lines[:11]) + "\r\n").encode("cp1252"))
    return spec


def test_a_file_without_an_evolved_column_loads_with_nulls_for_it(demo_home) -> None:
    # The next export is back to the old layout, with fewer rows: the evolved column is
    # optional now, so the file loads (it stuck the dataset with an uncaught error before).
    spec = _evolve_then_narrow(demo_home)
    [second] = load_dataset(spec, demo_home, TEST_KEY).batches
    assert (second.status, second.rows_valid) == ("loaded", 10)
    silver = pl.read_delta(demo_home.table_uri("silver", "sick_leave"))
    assert silver.filter(pl.col("_batch_id") == second.batch_id)["afdelingskode"].null_count() == 10
    assert runs(demo_home, "sick_leave")["status"].to_list() == ["loaded", "loaded"]


@pytest.mark.parametrize("policy", ["ignore", "freeze"])
def test_the_schema_check_passes_on_columns_evolve_added_after_the_policy_leaves_it(
    home, policy
) -> None:
    """Set back to ignore or freeze, the file loaded, but the blocking `schema` check failed
    on silver's evolved column (not in the contract) on every run from then on, with only
    `silver_columns_match_contract: false` to explain it: gold and serving stayed blocked."""
    generate(home.root, persons=300)
    later = dataclasses.replace(_evolve_then_narrow(home), schema_drift=policy)
    result = dataset_result(later, home, load_dataset(later, home, TEST_KEY))
    schema = next(c for c in result.check_results if c.check_name == "schema")
    assert schema.passed and schema.metadata["silver_columns_match_contract"].value is True


@pytest.mark.parametrize("policy", ["ignore", "freeze"])
def test_an_evolved_column_stays_optional_after_the_policy_leaves_evolve(home, policy) -> None:
    """Evolve for a while, then back to ignore or freeze: every later file (whatever its
    columns) failed the run with "table column(s) ['afdelingskode'] are missing from the
    batch", was neither loaded nor rejected, and the dataset loaded nothing again."""
    generate(home.root, persons=300)
    later = dataclasses.replace(_evolve_then_narrow(home), schema_drift=policy)
    [second] = load_dataset(later, home, TEST_KEY).batches
    assert (second.status, second.rows_valid) == ("loaded", 10)
    silver = pl.read_delta(home.table_uri("silver", "sick_leave"))
    assert silver.filter(pl.col("_batch_id") == second.batch_id)["afdelingskode"].null_count() == 10


def test_a_load_the_object_store_keeps_failing_names_the_store_and_says_to_re_run(
    home, tmp_path, monkeypatch
) -> None:
    # deltalake's own reads (here the table's _last_checkpoint) gave object_store's raw
    # chain: "Kernel error -> Generic S3 error <ESC>[31m↳<ESC>[0m Error performing GET ...
    # 503 Service Unavailable <ESC>[31m↳<ESC>[0m <Error><Code>SlowDown</Code>...", naming
    # neither the dataset nor what to do, and with terminal colour codes in it.
    spec = spec_by_name("sick_leave")
    generate(home.root, persons=100)
    monkeypatch.setenv("KOMMUNELAKE_HOME", str(home.root))
    monkeypatch.setenv("KOMMUNELAKE_PSEUDONYM_KEY", TEST_KEY.decode())
    with (
        objectstores.moto_server(tmp_path) as moto,
        ambiguous_commit_proxy(moto.url, tmp_path) as proxy,
    ):
        for name, value in objectstores.s3_environment(proxy).items():
            monkeypatch.setenv(name, value)
        bucket = objectstores.create_bucket(moto)
        monkeypatch.setenv("KOMMUNELAKE_LAKE_URI", f"s3://{bucket}/lake")
        selection = [dg.AssetKey(["silver", spec.name])]
        with dg.DagsterInstance.ephemeral() as instance:
            assert _materialize(instance, selection).success  # the table exists
            for _ in range(11):  # the first GET and deltalake's 10 retries (about 3 s)
                proxy.arm(f"{bucket}/lake/silver/", "503", r"/_last_checkpoint$", method="GET")
            failed = _materialize(instance, selection)
            [failure] = [e for e in failed.all_events if e.is_step_failure]
            again = _materialize(instance, selection)  # the store answers again
        silver = pl.read_delta(
            f"s3://{bucket}/lake/silver/{spec.name}",
            storage_options=objectstores.s3_environment(moto),
        )
        landed = objectstores.s3_client(moto).list_objects_v2(
            Bucket=bucket, Prefix=f"lake/landing/{spec.name}/"
        )["Contents"]
        assert all(item["Size"] > 0 for item in landed)  # the proxy forwards chunked bodies

    error = failure.step_failure_data.error
    while error.cause is not None and error.cls_name.startswith("Dagster"):
        error = error.cause
    message = error.message
    assert f"silver/{spec.name}" in message and "object store failed" in message
    assert "503 Service Unavailable" in message and "run it again" in message
    assert "\x1b" not in message and "<Error>" not in message
    assert again.success
    assert silver.get_column("_batch_id").n_unique() == 1  # the one delivery, once
    assert silver.get_column("absence_id").is_unique().all()


def test_quality_runs_shows_a_reloaded_batch_with_the_checks_of_its_reload(demo_home) -> None:
    from lake.serving import build_serving
    from pipelines.ingest import reload_batch

    fixed = spec_by_name("sick_leave")
    broken = dataclasses.replace(fixed, parse=dataclasses.replace(fixed.parse, date_formats=()))
    dataset_result(broken, demo_home, load_dataset(broken, demo_home, TEST_KEY))
    reload_batch(fixed, demo_home, TEST_KEY)
    # The reload's run loads nothing new: its checks judge the reloaded batch.
    dataset_result(fixed, demo_home, load_dataset(fixed, demo_home, TEST_KEY))
    build_serving(demo_home, {})

    con = connect(demo_home.root)
    rows = con.sql("""select rows_quarantined, checks_failed from quality.runs
                      order by finished_at""").fetchall()
    con.close()
    [(before, _), (after, failed)] = rows  # the load and its reload, one batch
    assert after < before / 5 and "quarantine_threshold" not in (failed or [])


def test_every_file_loaded_in_one_run_shows_the_runs_checks(demo_home) -> None:
    """Two exports waiting together load in one run; its checks judge both (the volume
    check warns about the short second one), so both loads' rows in quality.runs say so."""
    from lake.serving import build_serving

    spec = spec_by_name("sick_leave")
    [export] = (demo_home.drop / "sick_leave").glob("*.csv")
    header_and_some = export.read_bytes().splitlines(keepends=True)[:10]
    (demo_home.drop / "sick_leave" / "sygefravaer_2027.csv").write_bytes(b"".join(header_and_some))
    report = load_dataset(spec, demo_home, TEST_KEY, "run-1")
    assert [b.status for b in report.batches] == ["loaded", "loaded"]
    dataset_result(spec, demo_home, report, run_id="run-1")
    build_serving(demo_home, {})

    con = connect(demo_home.root)
    rows = con.sql("""select checks_passed, checks_failed from quality.runs
                      order by finished_at""").fetchall()
    con.close()
    [first, second] = rows
    assert second[0] is not None and "volume" in second[1]
    assert first == second


def test_a_reloads_row_in_quality_runs_says_what_the_reload_did(demo_home) -> None:
    from pipelines.ingest import reload_batch

    fixed = spec_by_name("sick_leave")
    broken = dataclasses.replace(fixed, parse=dataclasses.replace(fixed.parse, date_formats=()))
    load_dataset(broken, demo_home, TEST_KEY)
    reload_batch(fixed, demo_home, TEST_KEY)

    load, reload = runs(demo_home, "sick_leave").iter_rows(named=True)
    assert load["batch_id"] == reload["batch_id"] and load["message"] == ""
    released = load["rows_quarantined"] - reload["rows_quarantined"]
    assert released > 0
    assert "reloaded" in reload["message"]
    assert f"{released:,} rows released from quarantine" in reload["message"]
