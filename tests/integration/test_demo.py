"""The whole path, through the CLI, on a small Demo Kommune: what `make demo` promises."""

from __future__ import annotations

import json
import re

import polars as pl
import pytest
from deltalake import DeltaTable

from lake import connect
from lake.home import Home
from pipelines.cli import main
from pipelines.gold.models import MODELS
from pipelines.specs import load_specs
from tests.helpers import files_holding

pytestmark = pytest.mark.integration

PERSONS = 1500
# Defects a single-dataset contract must catch. unknown_address_id / unknown_person are
# cross-dataset findings: those rows are valid here and are left out of gold joins instead.
CONTRACT_DEFECTS = {"impossible_date", "duplicate_key", "missing_mandatory", "invalid_cvr"}
CPR_SHAPED = re.compile(rb"(?<![0-9])[0-3][0-9][01][0-9]{3}-?[0-9]{4}(?![0-9])")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Home, str]:
    root = tmp_path_factory.mktemp("demo") / "home"
    with pytest.MonkeyPatch.context() as env:
        for name in ("KOMMUNELAKE_HOME", "KOMMUNELAKE_PSEUDONYM_KEY", "DAGSTER_HOME"):
            env.delenv(name, raising=False)
        import io
        from contextlib import redirect_stdout

        out = io.StringIO()
        with redirect_stdout(out):
            assert main(["demo", "--home", str(root), "--persons", str(PERSONS)]) == 0
        yield Home(root), out.getvalue()


def _delta_versions(home: Home) -> dict[str, int]:
    logs = sorted(home.lake.rglob("_delta_log"))
    return {str(p.parent): DeltaTable(str(p.parent)).version() for p in logs}


def _manifest(home: Home) -> dict:
    return json.loads((home.drop / "_demo_manifest.json").read_text())


def test_summary_lists_every_dataset_and_next_steps(demo) -> None:
    _, output = demo
    for name in (
        "cpr_persons",
        "dar_addresses",
        "bbr_dwellings",
        "cvr_companies",
        "home_care_visits",
        "sick_leave",
        "meal_delivery_list",
    ):
        assert re.search(rf"^{name}\s+[\d,]+\s+[\d,]+\s+[\d,]+\s+loaded", output, re.M), name
    assert (
        "make ui" in output and "kommunelake sql" in output and "from lake import connect" in output
    )
    assert "created a pseudonymisation key" in output


def test_every_load_reconciles(demo) -> None:
    home, _ = demo
    con = connect(home.root)
    rows = con.sql(
        "select dataset, rows_in, rows_valid, rows_quarantined from quality.runs"
    ).fetchall()
    con.close()
    # One run per landed batch: every dataset loaded, the paged API ones in several batches.
    assert {dataset for dataset, *_ in rows} == {spec.name for spec in load_specs()}
    assert all(rows_in == valid + quarantined for _, rows_in, valid, quarantined in rows)


def test_population_counts_valid_persons_at_known_addresses(demo) -> None:
    home, _ = demo
    persons = pl.read_delta(home.table_uri("silver", "cpr_persons"))
    addresses = pl.read_delta(home.table_uri("silver", "dar_addresses"))
    expected = persons.join(addresses, on="address_id", how="semi").height
    assert 0 < expected < persons.height  # the demo injects unknown address ids
    con = connect(home.root)
    [(total,)] = con.sql("select sum(persons) from gold.population_by_district").fetchall()
    [(hours,)] = con.sql(
        "select sum(hours) from gold.home_care_hours_per_resident_65plus"
    ).fetchall()
    con.close()
    assert total == expected
    assert hours > 0


def test_quarantine_holds_the_injected_defects(demo) -> None:
    home, _ = demo
    con = connect(home.root)
    quarantined = set(con.sql("select dataset, source_row from quality.quarantine").fetchall())
    con.close()
    checked = 0
    for dataset, info in _manifest(home)["datasets"].items():
        for kind, defect in info["defects"].items():
            if kind not in CONTRACT_DEFECTS:
                continue
            for row in defect["rows"]:
                assert (dataset, row) in quarantined, (dataset, kind, row)
                checked += 1
    assert checked >= 10


def test_no_clear_cpr_outside_landing(demo) -> None:
    home, _ = demo
    persons_csv = next((home.drop / "cpr_persons").glob("*.csv")).read_text()
    clear = {line.split(";")[0] for line in persons_csv.splitlines()[1:] if line[:1].isdigit()}
    assert len(clear) > PERSONS * 0.9

    # Every string value of every table the serving layer can reach.
    for layer in ("silver", "gold", "quarantine"):
        for table in (home.lake / layer).iterdir():
            frame = pl.read_delta(str(table))
            for column in frame.select(pl.col(pl.String)).columns:
                values = set(frame.get_column(column).drop_nulls().to_list())
                assert not values & clear, f"{layer}/{table.name}.{column} holds clear CPR"
                assert not any(CPR_SHAPED.fullmatch(v.encode()) for v in values), column
    # Raw bytes of files that are not compressed: Delta logs (with column statistics), the
    # serving database and the Dagster instance (event log with all asset metadata).
    raw_files = [
        *home.lake.glob("*/*/_delta_log/*.json"),
        home.serving_db,
        *(p for p in home.dagster_home.rglob("*") if p.is_file()),
    ]
    assert raw_files
    leaked = files_holding(raw_files, clear)
    assert not leaked, f"clear CPR numbers in {sorted(leaked)}"


def test_second_run_on_identical_extracts_adds_no_delta_versions(demo) -> None:
    home, _ = demo
    before = _delta_versions(home)
    with pytest.MonkeyPatch.context() as env:
        env.delenv("KOMMUNELAKE_PSEUDONYM_KEY", raising=False)
        assert main(["demo", "--home", str(home.root), "--persons", str(PERSONS)]) == 0
    assert _delta_versions(home) == before


def test_sql_command_formats_and_errors(demo, capsys) -> None:
    home, _ = demo
    assert (
        main(
            [
                "sql",
                "select district, persons from gold.population_by_district",
                "--home",
                str(home.root),
                "--format",
                "csv",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("district,persons\n") and "Ålykke" in out
    assert main(["sql", "select * from silver.nope", "--home", str(home.root)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope" in err


def test_check_command_reports_failures_without_loading(demo, capsys, tmp_path) -> None:
    home, _ = demo
    before = _delta_versions(home)
    export = next((home.drop / "sick_leave").glob("*.csv"))
    assert main(["check", "--dataset", "sick_leave", str(export)]) == 1
    out = capsys.readouterr().out
    assert "failing" in out and "start_date" in out

    broken = tmp_path / "renamed.csv"
    text = export.read_bytes().decode("cp1252").replace("CPR;", "Personnummer;", 1)
    broken.write_bytes(text.encode("cp1252"))
    assert main(["check", "--dataset", "sick_leave", str(broken)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("REJECTED") and "missing required column(s) cpr" in out
    assert _delta_versions(home) == before


def test_catalog_columns_describe_every_served_column_as_it_is(demo) -> None:
    """catalog.columns (and the UI's column schema, made from the same list) names each
    silver, gold and published column in the table's order with the table's type, and every
    concept it names has a glossary entry listing that column."""
    home, _ = demo
    con = connect(home.root)
    try:
        documented = con.sql(
            'select layer, dataset, list(struct_pack(c := "column", t := dtype) order by '
            "position) from catalog.columns group by all"
        ).fetchall()
        glossary = dict(con.sql("select concept, used_in from catalog.glossary").fetchall())
        concepts = con.sql(
            "select concept, layer || '.' || dataset || '.' || \"column\" from catalog.columns "
            "where concept is not null"
        ).fetchall()
        # A published view is no Delta table: its schema as DuckDB serves it.
        views = {
            dataset: con.sql(f"select * from published.{dataset} limit 0").pl().schema
            for layer, dataset, _ in documented
            if layer == "published"
        }
    finally:
        con.close()
    assert {layer for layer, _, _ in documented} == {"silver", "gold", "published"}
    for layer, dataset, columns in documented:
        if layer == "published":
            schema = views[dataset]
        else:
            schema = pl.scan_delta(home.table_uri(layer, dataset)).collect_schema()
        assert [(c["c"], c["t"]) for c in columns] == [(n, str(t)) for n, t in schema.items()]
    for concept, column in concepts:
        assert column in glossary[concept]


def test_published_gold_shows_no_figure_about_fewer_than_five_persons(demo) -> None:
    home, _ = demo
    con = connect(home.root)
    try:
        for model in MODELS:
            if model.small_cells is None:
                continue
            figures = dict(model.small_cells.figures)
            where = [c.name for c in model.columns if c.name not in figures]
            published = con.sql(f"select * from published.{model.name}").pl().sort(where)
            gold = con.sql(f"select * from gold.{model.name}").pl().sort(where)
            assert published.drop("suppressed").columns == gold.columns
            assert published.select(where).equals(gold.select(where))
            for figure, bases in figures.items():
                few = gold.select(pl.any_horizontal(pl.col(b).is_between(1, 4) for b in bases))
                shown = published[figure].filter(few.to_series())
                assert shown.null_count() == shown.len(), (model.name, figure)
            for outer, inners in model.small_cells.within:
                for inner in inners:
                    close = (gold[outer] - gold[inner]).is_between(1, 4) & published[
                        outer
                    ].is_not_null()
                    shown = published[inner].filter(close)
                    assert shown.null_count() == shown.len(), (model.name, outer, inner)
            for row in published.iter_rows(named=True):
                assert all(row[name] is None for name in row["suppressed"])
    finally:
        con.close()
