"""The bench cases: one function each, doing exactly its job on (csv_path, workdir).

Every case reads the same semicolon CSV case extract and commits one Delta table under
`workdir`; each returns the rows it wrote. Work that a real delivery does not cost (putting
the file into the drop folder) happens in a `prepare_*` function that the runner does not
time. Imports of the case's libraries happen inside the case, so an import's cost is counted
only where it is paid.

- product: kommunelake's own path, `pipelines.ingest.load_dataset` on a temporary home:
  landing (SHA-256, manifest), parse, conform to the pandera contract `CaseExtract`,
  quarantine, key uniqueness, pseudonymisation and the silver Delta commit, plus the
  quality/runs record.
- b1_polars: bare `polars.read_csv` → `write_delta`: no typing, no validation. The floor.
- b3_dlt: what a dlt user would write: pyarrow's streaming CSV reader yields record batches
  as arrow items from a `dlt.resource` into the filesystem destination as a Delta table.
- b4_pandas: pandas `read_csv` (all text), parse dates and decimal commas, a pandera pandas
  schema with comparable checks (types, CPR shape, isin, ranges), failing rows and repeated
  keys dropped, `deltalake.write_deltalake`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

SPEC_PATH = Path(__file__).parent / "case_extract.yaml"
DATASET = "case_extract"
# Fixed and public on purpose: the bench pseudonymises synthetic CPR numbers only.
BENCH_KEY = b"kommunelake-bench-pseudonym-key-not-a-secret-0001"
HEADERS = {
    "Sagsnummer": "case_id",
    "CPR": "cpr",
    "Sagstype": "case_type",
    "Oprettet": "opened",
    "Afsluttet": "closed",
    "Enhed": "unit",
    "Sagsbehandler": "caseworker",
    "Beløb": "amount",
    "Status": "status",
    "Kommunekode": "kommunekode",
}


def delta_rows(uri: Path | str) -> int:
    """Rows in a Delta table's current version, from the log's file statistics (no data read)."""
    from deltalake import DeltaTable

    actions = DeltaTable(str(uri)).get_add_actions(flatten=True)
    return int(sum(actions.column("num_records").to_pylist()))


# --- product -------------------------------------------------------------------------------


def prepare_product(csv_path: Path, workdir: Path) -> None:
    """The delivery, not timed: a fresh home whose drop folder holds a copy of the extract."""
    drop = workdir / "home" / "drop" / DATASET
    drop.mkdir(parents=True)
    shutil.copyfile(csv_path, drop / csv_path.name)


def product(csv_path: Path, workdir: Path) -> int:
    from lake.home import Home
    from pipelines.ingest import load_dataset
    from pipelines.specs import load_spec

    home = Home(workdir / "home")
    report = load_dataset(load_spec(SPEC_PATH), home, BENCH_KEY)
    if len(report.batches) != 1 or report.batches[0].status != "loaded":
        raise RuntimeError(f"product path did not load one batch: {report}")
    batch = report.batches[0]
    if batch.rows_in != batch.rows_valid + batch.rows_quarantined:
        raise RuntimeError(f"rows do not reconcile: {batch}")
    return batch.rows_valid


# --- B1: bare polars -----------------------------------------------------------------------


def b1_polars(csv_path: Path, workdir: Path) -> int:
    import polars as pl

    frame = pl.read_csv(csv_path, separator=";")
    frame.write_delta(str(workdir / "b1"), mode="append")
    return frame.height


# --- B3: dlt -------------------------------------------------------------------------------


def b3_dlt(csv_path: Path, workdir: Path) -> int:
    # dlt reads its configuration from the environment when imported: offline, no telemetry,
    # and every file it keeps (pipeline state, load packages) inside the workdir.
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    os.environ["DLT_DATA_DIR"] = str(workdir / "dlt_data")
    import dlt
    import pyarrow as pa
    import pyarrow.csv as pacsv

    @dlt.resource(name="cases", table_format="delta", write_disposition="append")
    def cases():
        # All text, as in the other cases: inferred types would turn kommunekode 0101 into 101.
        reader = pacsv.open_csv(
            csv_path,
            read_options=pacsv.ReadOptions(block_size=16 << 20),
            parse_options=pacsv.ParseOptions(delimiter=";"),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in HEADERS}
            ),
        )
        yield from reader

    pipeline = dlt.pipeline(
        pipeline_name="bench_b3",
        pipelines_dir=str(workdir / "dlt_pipelines"),
        destination=dlt.destinations.filesystem(bucket_url=(workdir / "b3").as_uri()),
        dataset_name="bench",
        progress="log" if os.environ.get("BENCH_VERBOSE") else None,
    )
    info = pipeline.run(cases())
    info.raise_on_failed_jobs()
    return delta_rows(workdir / "b3" / "bench" / "cases")


# --- B4: pandas + pandera ------------------------------------------------------------------


def _pandas_schema():
    import pandas as pd
    import pandera.pandas as pa

    from schemas.case_extract import CASE_TYPES, STATUSES

    text = pa.Column(str)
    return pa.DataFrameSchema(
        {
            "case_id": text,
            "cpr": pa.Column(str, pa.Check.str_matches(r"^\d{6}-?\d{4}$")),
            "case_type": pa.Column(str, pa.Check.isin(CASE_TYPES)),
            "opened": pa.Column("datetime64[ns]"),
            "closed": pa.Column("datetime64[ns]", nullable=True),
            "unit": text,
            "caseworker": text,
            "amount": pa.Column(float, pa.Check.ge(0)),
            "status": pa.Column(str, pa.Check.isin(STATUSES)),
            "kommunekode": pa.Column(str, pa.Check.str_matches(r"^\d{4}$")),
        },
        checks=pa.Check(
            lambda df: df["closed"].isna() | (df["closed"] >= df["opened"]),
            name="closed_not_before_opened",
        ),
        strict=True,
        coerce=False,
    ), pd


def b4_pandas(csv_path: Path, workdir: Path) -> int:
    import pandera.errors
    from deltalake import write_deltalake

    schema, pd = _pandas_schema()
    frame = pd.read_csv(csv_path, sep=";", dtype=str, keep_default_na=False, na_values=[""])
    frame = frame.rename(columns=HEADERS)
    for column in ("opened", "closed"):
        frame[column] = pd.to_datetime(frame[column], format="%d-%m-%Y", errors="coerce").astype(
            "datetime64[ns]"
        )
    frame["amount"] = pd.to_numeric(
        frame["amount"].str.replace(".", "", regex=False).str.replace(",", ".", regex=False),
        errors="coerce",
    ).astype(float)
    # A value that did not parse is a failure of its row, as in the product's conform step.
    unparsed = frame["opened"].isna() | frame["amount"].isna()
    frame = frame[~unparsed]
    try:
        valid = schema.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as errors:
        failed = errors.failure_cases["index"].dropna().unique()
        valid = schema.validate(frame.drop(index=failed), lazy=True)
    valid = valid.drop_duplicates(subset=["case_id"], keep="first")
    write_deltalake(str(workdir / "b4"), valid, mode="append")
    return len(valid)


CASES: dict[str, Callable[[Path, Path], int]] = {
    "product": product,
    "b1": b1_polars,
    "b3": b3_dlt,
    "b4": b4_pandas,
}
PREPARE: dict[str, Callable[[Path, Path], None]] = {"product": prepare_product}
