"""A seeded, synthetic fagsystem case extract (sagsudtræk) of any size, for the bench.

6,000,000 rows make a ~640 MB semicolon CSV in UTF-8, written the way Danish case systems
export: `DD-MM-YYYY` dates, decimal commas with `.` thousands separators, `DDMMYY-SSSS` CPR
numbers (synthetic: drawn with the demo's CPR rules from a fixed pool of citizens, so a
bigger extract means more cases per person, as more years of history would).

A small, fixed share of rows carries contract defects (impossible CPR dates, bad dates,
unknown statuses, negative amounts, repeated case numbers) so the product path has rows
to quarantine. Same seed and rows, same bytes.

    python -m bench.generate --rows 6000000 --out bench/data/cases_6m.csv
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import numpy as np
import polars as pl

from connectors.demo.cpr import seventh_digits
from schemas.case_extract import CASE_TYPES, STATUSES

PERSONS = 300_000  # citizens in the extract, fixed whatever its size
UNITS = [
    "Ældre og Sundhed",
    "Social og Beskæftigelse",
    "Børn og Unge",
    "Handicap og Psykiatri",
    "Borgerservice",
]
CHUNK = 1_000_000  # rows generated and written at a time: memory stays flat
DEFECT_RATE = 0.001
_EPOCH = dt.date(2015, 1, 1)
_DAYS = (dt.date(2025, 12, 31) - _EPOCH).days


def _persons(rng: np.random.Generator) -> np.ndarray:
    """PERSONS synthetic CPR numbers as `DDMMYY-SSSS`, with a 7th digit that fits the year."""
    births = np.datetime64("1925-01-01") + rng.integers(0, 365 * 95, PERSONS).astype(
        "timedelta64[D]"
    )
    frame = pl.DataFrame({"birth": births.astype("datetime64[D]")}).with_columns(
        pl.col("birth").cast(pl.Date)
    )
    years = frame["birth"].dt.year().to_numpy()
    sevenths = np.array([rng.choice(seventh_digits(int(y))) for y in np.unique(years)])
    seventh_of = dict(zip(np.unique(years).tolist(), sevenths.tolist(), strict=True))
    seventh = np.array([seventh_of[y] for y in years.tolist()])
    serial = rng.integers(0, 1000, PERSONS)
    return (
        frame.select(
            pl.col("birth").dt.strftime("%d%m%y")
            + "-"
            + pl.Series(seventh).cast(pl.String)
            + pl.Series(serial).cast(pl.String).str.zfill(3)
        )
        .to_series()
        .to_numpy()
    )


def _chunk(rng: np.random.Generator, start: int, rows: int, cprs: np.ndarray) -> pl.DataFrame:
    opened = rng.integers(0, _DAYS, rows)
    duration = rng.integers(1, 900, rows)
    still_open = rng.random(rows) < 0.2
    amount_ore = rng.integers(0, 250_000_00, rows)
    frame = pl.DataFrame(
        {
            "Sagsnummer": pl.Series(np.arange(start, start + rows)),
            "CPR": cprs[rng.integers(0, PERSONS, rows)],
            "Sagstype": np.array(CASE_TYPES)[rng.integers(0, len(CASE_TYPES), rows)],
            "opened": opened,
            "closed": np.where(still_open, -1, opened + duration),
            "Enhed": np.array(UNITS)[rng.integers(0, len(UNITS), rows)],
            "caseworker": rng.integers(1, 2_000, rows),
            "amount": amount_ore,
            "Status": np.array(STATUSES)[rng.integers(0, len(STATUSES), rows)],
        }
    )
    epoch = pl.lit(_EPOCH)
    kroner = pl.col("amount") // 100
    formatted = frame.select(
        pl.format("SAG-{}", pl.col("Sagsnummer").cast(pl.String).str.zfill(9)).alias("Sagsnummer"),
        pl.col("CPR"),
        pl.col("Sagstype"),
        (epoch + pl.duration(days=pl.col("opened"))).dt.strftime("%d-%m-%Y").alias("Oprettet"),
        pl.when(pl.col("closed") >= 0)
        .then((epoch + pl.duration(days=pl.col("closed"))).dt.strftime("%d-%m-%Y"))
        .alias("Afsluttet"),
        pl.col("Enhed"),
        pl.format("M{}", pl.col("caseworker").cast(pl.String).str.zfill(5)).alias("Sagsbehandler"),
        pl.format(
            "{},{}",
            # 1234567 → "1.234.567": reverse, group by three, reverse back.
            kroner.cast(pl.String)
            .str.reverse()
            .str.replace_all(r"(\d{3})", "$1.")
            .str.reverse()
            .str.strip_chars_start("."),
            (pl.col("amount") % 100).cast(pl.String).str.zfill(2),
        ).alias("Beløb"),
        pl.col("Status"),
        pl.lit("0101").alias("Kommunekode"),
    )
    return _defects(rng, formatted)


def _defects(rng: np.random.Generator, frame: pl.DataFrame) -> pl.DataFrame:
    """Spoil DEFECT_RATE of the rows, one defect each, spread over five kinds."""
    kind = np.where(rng.random(frame.height) < DEFECT_RATE, rng.integers(1, 6, frame.height), 0)
    which = pl.Series(kind)
    return frame.with_columns(
        pl.when(which == 1).then(pl.lit("310299-1234")).otherwise("CPR").alias("CPR"),
        pl.when(which == 2).then(pl.lit("31-02-2023")).otherwise("Oprettet").alias("Oprettet"),
        pl.when(which == 3).then(pl.lit("Ukendt")).otherwise("Status").alias("Status"),
        pl.when(which == 4).then(pl.lit("-12,00")).otherwise("Beløb").alias("Beløb"),
        # A repeated case number: the earlier row wins, this one is quarantined.
        pl.when(which == 5)
        .then(pl.lit("SAG-000000001"))
        .otherwise("Sagsnummer")
        .alias("Sagsnummer"),
    )


def generate(rows: int, out: Path, seed: int = 20261122) -> Path:
    rng = np.random.default_rng(seed)
    cprs = _persons(rng)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with tmp.open("wb") as handle:
        for start in range(0, rows, CHUNK):
            chunk = _chunk(rng, start + 1, min(CHUNK, rows - start), cprs)
            chunk.write_csv(handle, separator=";", include_header=start == 0)
            print(
                f"\r  generated {start + chunk.height:,} / {rows:,} rows", end="", file=sys.stderr
            )
    print(file=sys.stderr)
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=6_000_000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=20261122)
    args = parser.parse_args(argv)
    path = generate(args.rows, args.out, args.seed)
    print(f"{path}: {path.stat().st_size / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
