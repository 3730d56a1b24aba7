"""`kommunelake erase` on a home loaded through Dagster by `kommunelake load`: the subject
leaves silver, quarantine, gold, serving and every earlier Delta version, and stays out."""

from __future__ import annotations

import getpass
import io
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from deltalake import DeltaTable

from connectors.demo import generate
from connectors.formats import iter_table
from lake import connect, erasure
from lake.home import Home
from lake.landing import local_copy, manifest
from lake.privacy import pseudonym
from pipelines.abandoned_runs import WORKER_TAG, this_worker
from pipelines.cli import main
from pipelines.gold.models import MODELS, compute
from pipelines.ingest import reader_options
from pipelines.specs import spec_by_name
from tests.conftest import TEST_KEY
from tests.helpers import redeliver_cpr
from tests.lake.test_erasure import holding

# The file datasets that hold CPR numbers, the registers gold joins them to, gold, serving:
# no API dataset, so no demo services are needed.
SELECT = (
    "key:silver/cpr_persons or key:silver/dar_addresses or key:silver/home_care_visits or "
    "key:silver/meal_delivery_list or key:silver/sick_leave or group:gold or "
    "key:serving/lake_duckdb"
)
CPR_DATASETS = ("cpr_persons", "home_care_visits", "meal_delivery_list", "sick_leave")


def load_demo(home: Home, monkeypatch) -> Home:
    """The demo's CPR datasets loaded into `home` (its lake local or in object storage) by
    `kommunelake load`."""
    for name in ("KOMMUNELAKE_HOME", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KOMMUNELAKE_PSEUDONYM_KEY", TEST_KEY.decode())
    generate(home.root, persons=400)
    assert main(["load", "--home", str(home.root), "--select", SELECT]) == 0
    return home


@pytest.fixture
def loaded(home: Home, monkeypatch) -> Home:
    return load_demo(home, monkeypatch)


def _raw(home: Home, dataset: str) -> pl.DataFrame:
    """The newest landed delivery of a dataset as the reader gives it, CPR as digits."""
    spec = spec_by_name(dataset)
    landed = manifest(home.manifest_uri, dataset)[-1]
    with local_copy(landed, home) as path:
        raw = pl.concat(iter_table(path, reader_options(spec), source_name="x"))
    [header] = erasure.raw_headers(raw.columns, ["cpr"], spec.columns)
    return raw.with_columns(erasure.digits(pl.col(header)).alias("_cpr"))


def _subject(home: Home) -> str:
    """A person with a row in silver.cpr_persons, a second one quarantined there as a
    duplicate key, and home-care visits (the seeded demo has one)."""
    quarantined = _rows(home, "quarantine", "cpr_persons").filter(
        pl.col("check") == "duplicate_key"
    )
    persons = _raw(home, "cpr_persons")
    visited = set(_raw(home, "home_care_visits")["_cpr"])
    candidates = persons.filter(
        pl.col("_source_row").is_in(quarantined["source_row"].implode())
        & pl.col("_cpr").is_in(list(visited))
    )
    return candidates["_cpr"][0]


def _token(number: str) -> str:
    return pseudonym(number, TEST_KEY, "cpr")


def _erase(home: Home, number: str, monkeypatch, *extra: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(number + "\n"))
    return main(["erase", "--cpr", "-", "--home", str(home.root), *extra])


def _rows(home: Home, layer: str, name: str) -> pl.DataFrame:
    return pl.read_delta(home.table_uri(layer, name), storage_options=home.storage_options())


def assert_only_the_subject_left(
    home: Home,
    token: str,
    before: dict[str, pl.DataFrame],
    theirs: dict[str, int],
    quarantine_before: int,
) -> None:
    """Silver lost the subject's rows and no others, quarantine their one row, and gold is
    what the remaining silver gives."""
    for name in CPR_DATASETS:
        after = _rows(home, "silver", name)
        assert token not in after["cpr"].to_list()
        assert after.height == before[name].height - theirs[name]  # the others stay
    assert _rows(home, "quarantine", "cpr_persons").height == quarantine_before - 1
    for model in MODELS:
        gold = _rows(home, "gold", model.name)
        assert gold.sort(gold.columns).equals(compute(home, model).sort(gold.columns))


def test_erase_removes_the_subject_everywhere_and_leaves_the_others(
    loaded, monkeypatch, capsys
) -> None:
    number = _subject(loaded)
    token = _token(number)
    before = {n: _rows(loaded, "silver", n) for n in CPR_DATASETS}
    theirs = {n: before[n].filter(pl.col("cpr") == token).height for n in CPR_DATASETS}
    assert theirs["cpr_persons"] == 1 and theirs["home_care_visits"] > 0
    quarantine_before = _rows(loaded, "quarantine", "cpr_persons").height
    capsys.readouterr()

    assert _erase(loaded, number, monkeypatch) == 0

    out, err = capsys.readouterr()
    assert number not in out + err and token not in out + err
    assert "cpr_persons: removed 1 silver row(s), 1 quarantine row(s)" in out
    silver = sum(theirs.values())
    assert (
        f"Erased: {silver + 1:,} row(s) removed (silver {silver:,}, quarantine 1, gold 0, "
        "quality.deletions 0)"
    ) in out
    assert "landing: cpr_persons batch" in out and "cpr_personer.csv" in out
    assert_only_the_subject_left(loaded, token, before, theirs, quarantine_before)
    # no readable earlier version and no file left in silver, quarantine, quality, gold
    lake = loaded.lake
    for layer in ("silver", "quarantine", "quality", "gold"):
        assert holding(lake / layer, token) == [], layer
    for name in CPR_DATASETS:
        for layer in ("silver", "quarantine"):
            uri = loaded.table_uri(layer, name)
            if DeltaTable.is_deltatable(uri):
                assert erasure.readable_versions(uri) == [DeltaTable(uri).version()]
    assert token.encode() not in loaded.serving_db.read_bytes()
    con = connect(str(loaded.root))
    try:
        for name in CPR_DATASETS:
            held = con.execute(f"select count(*) from silver.{name} where cpr = ?", [token])
            assert held.fetchone() == (0,)
        [audit] = con.sql("select * from quality.erasures").pl().to_dicts()
    finally:
        con.close()
    assert audit["erased_by"] == getpass.getuser() and audit["subject_found"]
    assert audit["rows_removed"] == sum(theirs.values()) + 1  # + the quarantine row
    assert number not in str(audit) and token not in str(audit)
    # the register holds the pseudonym (never the number), and only it
    assert erasure.erased(loaded.erasures_uri) == {token}
    assert holding(lake / "state", number) == []


def test_a_redelivery_or_reload_does_not_bring_the_subject_back(
    loaded, monkeypatch, capsys
) -> None:
    number = _subject(loaded)
    token = _token(number)
    assert _erase(loaded, number, monkeypatch) == 0
    # the vendor sends the extract again, the subject still in it (twice)
    persons = _raw(loaded, "cpr_persons")
    other = persons.filter(pl.col("_cpr") != number)["FORNAVN"][0]
    redeliver_cpr(loaded, f";{other};", f";{other}a;")
    capsys.readouterr()

    assert main(["load", "--home", str(loaded.root), "--select", "key:silver/cpr_persons+"]) == 0
    assert main(["reload", "--home", str(loaded.root), "--dataset", "home_care_visits"]) == 0

    assert token not in _rows(loaded, "silver", "cpr_persons")["cpr"].to_list()
    assert token not in _rows(loaded, "silver", "home_care_visits")["cpr"].to_list()
    runs = pl.read_delta(loaded.runs_uri).sort("finished_at")
    newest = runs.filter(pl.col("dataset") == "cpr_persons").row(-1, named=True)
    subject_rows = persons.filter(pl.col("_cpr") == number).height
    assert newest["rows_in"] == persons.height - subject_rows
    assert f"{subject_rows} row(s) of erased data subjects left out" in newest["message"]
    reload = runs.filter(pl.col("dataset") == "home_care_visits").row(-1, named=True)
    assert "erased data subjects left out" in reload["message"]
    assert number not in capsys.readouterr().err


def test_dry_run_says_what_would_go_and_changes_nothing(loaded, monkeypatch, capsys) -> None:
    def state() -> dict[Path, int]:
        return {
            p: p.stat().st_mtime_ns
            for p in loaded.root.rglob("*")
            if p.is_file() and "dagster" not in p.parts
        }

    before = state()
    capsys.readouterr()
    assert _erase(loaded, _subject(loaded), monkeypatch, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "cpr_persons: would remove 1 silver row(s), 1 quarantine row(s)" in out
    assert "quarantine 1, gold 0, quality.deletions 0); nothing was changed." in out
    assert state() == before


def test_a_subject_found_nowhere_is_said_and_still_registered(loaded, monkeypatch, capsys) -> None:
    number = "0101010101"  # synthetic, a real date, not in the demo
    capsys.readouterr()
    assert _erase(loaded, number, monkeypatch) == 0
    out = capsys.readouterr().out
    assert "found nowhere" in out and "erasure register" in out
    assert erasure.erased(loaded.erasures_uri) == {_token(number)}
    [audit] = _rows(loaded, "quality", "erasures").to_dicts()
    assert not audit["subject_found"] and audit["rows_removed"] == 0


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("12345", "expected a CPR number"),
        ("3213901234", "no real date"),
        ("01019O1234", "expected a CPR number"),
    ],
)
def test_a_bad_cpr_number_is_one_clear_line(loaded, monkeypatch, capsys, given, said) -> None:
    capsys.readouterr()
    assert main(["erase", "--cpr", given, "--home", str(loaded.root)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("kommunelake erase: --cpr:") and said in err
    assert given not in err
    assert not DeltaTable.is_deltatable(loaded.erasures_uri)


def test_another_key_than_the_lakes_is_refused_before_anything_changes(
    loaded, monkeypatch, capsys
) -> None:
    number = _subject(loaded)
    monkeypatch.setenv("KOMMUNELAKE_PSEUDONYM_KEY", "another-key-" + "y" * 32)
    capsys.readouterr()
    assert _erase(loaded, number, monkeypatch) == 1
    err = capsys.readouterr().err
    assert "not the one silver.cpr_persons was written with" in err
    assert not DeltaTable.is_deltatable(loaded.erasures_uri)
    assert _token(number) in _rows(loaded, "silver", "cpr_persons")["cpr"].to_list()


def test_a_subject_only_in_earlier_versions_and_deletions_is_erased_from_them(
    loaded, monkeypatch, capsys
) -> None:
    """The person moved away: the next CPR extract lacks them, so silver's current version
    does not hold them, but its earlier versions and quality.deletions do."""
    number = _subject(loaded)
    token = _token(number)
    extract = loaded.drop / "cpr_persons" / "cpr_personer.csv"
    lines = extract.read_text().splitlines(keepends=True)
    extract.write_text("".join(line for line in lines if not line.startswith(number)))
    assert main(["load", "--home", str(loaded.root), "--select", "key:silver/cpr_persons+"]) == 0
    silver = loaded.table_uri("silver", "cpr_persons")
    assert token not in pl.read_delta(silver)["cpr"].to_list()
    assert token in pl.read_delta(silver, version=0)["cpr"].to_list()
    deleted = _rows(loaded, "quality", "deletions")
    assert deleted.filter(pl.col("key").str.contains(token)).height == 1
    capsys.readouterr()

    assert _erase(loaded, number, monkeypatch) == 0

    out = capsys.readouterr().out
    assert "cpr_persons: removed 0 silver row(s), 1 quarantine row(s)" in out
    assert erasure.readable_versions(silver) == [DeltaTable(silver).version()]
    assert holding(loaded.lake / "silver", token) == []
    assert holding(loaded.lake / "quality", token) == []
    assert _rows(loaded, "quality", "deletions").height == deleted.height - 1


def test_erase_waits_for_no_load_to_run(loaded, monkeypatch, capsys) -> None:
    """A run in progress (here: one of this very process, so alive) keeps erase from
    starting; a dry run changes nothing and may go ahead."""
    number = _subject(loaded)
    with dg.DagsterInstance.from_config(str(loaded.dagster_home)) as instance:
        run = dg.DagsterRun(
            job_name="__ephemeral_asset_job__",
            status=dg.DagsterRunStatus.STARTED,
            tags={WORKER_TAG: this_worker()},
        )
        instance.add_run(run)
    capsys.readouterr()
    assert _erase(loaded, number, monkeypatch) == 1
    err = capsys.readouterr().err
    assert f"run {run.run_id} (STARTED) is in progress" in err and "nothing was erased" in err
    assert not DeltaTable.is_deltatable(loaded.erasures_uri)
    assert _erase(loaded, number, monkeypatch, "--dry-run") == 0
