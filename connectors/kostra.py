"""KOSTRA (KOmmune-STat-RApportering, Statistics Norway's municipal key figures): publication
history and the 1 January 2020 municipality reform.

Publications. SSB publishes KOSTRA figures for year Y twice: unrevised on 15 March Y+1 and
revised on 15 June Y+1. `publication_for` names the publication a fetch saw ("2023-unrevised",
"2023-revised"); `stamp_publication` adds it and `fetched_at` to a long table (from
`connectors.pxweb` / `connectors.jsonstat.to_long`); `append_publication` keeps every
publication as its own rows, so a revision never silently overwrites what was published
before; `revisions` lists the cells that changed between two publications.

The reform. On 1 January 2020 Norway went from 422 to 356 municipalities (kommuner) and from
18 to 11 counties (fylker). `harmonise` maps 2019 codes to 2020 codes with the mapping in
`kommuner_2020.csv` (SSB KLASS 131; provenance in its header). Merged municipalities are
summed only for measures the caller declares additive (counts, kroner): ratios, per-capita
figures and shares cannot be summed, and nor can figures of the two municipalities that were
split between several new ones (Tysfjord 1850, Snillfjord 5012). Those cells are refused
(`errors="raise"`) or returned as null with a flag (`errors="flag"`), never guessed.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Literal

import polars as pl

MAPPING_CSV = Path(__file__).with_name("kommuner_2020.csv")
UNREVISED = (3, 15)  # (month, day) in year Y+1
REVISED = (6, 15)
PUBLICATION = "publication"
FETCHED_AT = "fetched_at"
FLAG = "harmonised"
# What harmonise did to each row; the last three have a null value.
FLAGS = ("as_is", "renumbered", "summed", "not_additive", "incomplete", "split")
_REFUSED = ("not_additive", "incomplete", "split")
_CODE = r"^(\D*?)(\d{4})$"  # "0301", or SSB's aggregated-region form "K-0301"


class KostraError(ValueError):
    """A table or request this module cannot handle as asked (what, where, what to do)."""


class PublicationConflict(KostraError):
    """The same publication fetched twice with different figures."""


class HarmoniseError(KostraError):
    """Cells that cannot be mapped to the 2020 structure without guessing."""


# -- publications
def _day(value: date) -> date:
    return value.date() if isinstance(value, datetime) else value


def publication_for(
    fetched_at: date,
    year: int,
    *,
    unrevised_on: date | None = None,
    revised_on: date | None = None,
) -> str:
    """The KOSTRA publication of `year`'s figures current on `fetched_at`.

    Day-granular (SSB publishes at 08:00 Norwegian time; pass the Oslo date). Pass
    `unrevised_on`/`revised_on` when SSB moved a release day. Raises before the first one.
    """
    day = _day(fetched_at)
    unrevised = unrevised_on or date(year + 1, *UNREVISED)
    revised = revised_on or date(year + 1, *REVISED)
    if not unrevised < revised:
        raise KostraError(f"KOSTRA {year}: unrevised ({unrevised}) must come before revised")
    if day >= revised:
        return f"{year}-revised"
    if day >= unrevised:
        return f"{year}-unrevised"
    raise KostraError(
        f"KOSTRA figures for {year} are first published on {unrevised}; a fetch on {day} "
        "cannot hold them. Check the year column and the fetch date"
    )


def stamp_publication(
    table: pl.DataFrame, fetched_at: date, *, year_column: str = "Tid"
) -> pl.DataFrame:
    """`table` plus `publication` (per row, from its year) and `fetched_at` columns."""
    if year_column not in table.columns:
        raise KostraError(f"no year column {year_column!r} (columns: {table.columns})")
    for name in (PUBLICATION, FETCHED_AT):
        if name in table.columns:
            raise KostraError(f"the table already has a {name!r} column: stamped twice?")
    years = table.get_column(year_column).cast(pl.String).unique().drop_nulls().to_list()
    labels: dict[str, str] = {}
    for text in years:
        if not text.isdigit():
            raise KostraError(f"{year_column} value {text!r} is not a year (KOSTRA is annual)")
        labels[text] = publication_for(fetched_at, int(text))
    label = pl.col(year_column).cast(pl.String).replace_strict(labels, return_dtype=pl.String)
    stamp = pl.lit(fetched_at, dtype=pl.Datetime if isinstance(fetched_at, datetime) else pl.Date)
    return table.with_columns(label.alias(PUBLICATION), stamp.alias(FETCHED_AT))


def _cell_keys(table: pl.DataFrame) -> list[str]:
    skip = {"value", "status", PUBLICATION, FETCHED_AT, FLAG}
    return [c for c in table.columns if c not in skip and not c.endswith("_label")]


def append_publication(history: pl.DataFrame | None, stamped: pl.DataFrame) -> pl.DataFrame:
    """`history` plus the publications in `stamped` that it does not hold yet.

    A publication already in `history` with the same figures is skipped (a replayed load);
    with different figures it raises `PublicationConflict`, since SSB changing a published
    figure without a new publication needs a person to look, not an overwrite.
    """
    if history is None or history.is_empty():
        return stamped
    keys = [*_cell_keys(stamped), PUBLICATION]
    known = stamped.join(history.select(*keys, "value", "status"), on=keys, how="inner")
    changed = known.filter(
        pl.col("value").ne_missing(pl.col("value_right"))
        | pl.col("status").ne_missing(pl.col("status_right"))
    )
    if changed.height:
        first = changed.row(0, named=True)
        where = ", ".join(f"{k}={first[k]}" for k in keys)
        raise PublicationConflict(
            f"{changed.height} cell(s) of an already stored publication differ, first {where}: "
            f"stored {first['value_right']!r}, fetched {first['value']!r}. Check whether SSB "
            "corrected the publication, and store the correction under its own label"
        )
    new = stamped.join(history.select(keys).unique(), on=keys, how="anti")
    return pl.concat([history, new], how="diagonal_relaxed")


def revisions(history: pl.DataFrame, earlier: str, later: str) -> pl.DataFrame:
    """Cells whose value or status differs between two publications (added or dropped
    cells included): the cell keys, then value/status `_earlier` and `_later`."""
    keys = _cell_keys(history)
    columns = [*keys, "value", "status"]
    first = history.filter(pl.col(PUBLICATION) == earlier).select(columns)
    second = history.filter(pl.col(PUBLICATION) == later).select(columns)
    for label, part in ((earlier, first), (later, second)):
        if part.is_empty():
            raise KostraError(f"no rows for publication {label!r} in the history")
    both = first.join(second, on=keys, how="full", coalesce=True, suffix="_later")
    both = both.rename({"value": "value_earlier", "status": "status_earlier"})
    return both.filter(
        pl.col("value_earlier").ne_missing(pl.col("value_later"))
        | pl.col("status_earlier").ne_missing(pl.col("status_later"))
    ).sort(keys)


# -- the 2020 reform
@cache
def reform_2020() -> pl.DataFrame:
    """old_code, old_name, new_code, new_name, change (see kommuner_2020.csv)."""
    return pl.read_csv(
        MAPPING_CSV,
        comment_prefix="#",
        schema=dict.fromkeys(("old_code", "old_name", "new_code", "new_name", "change"), pl.String),
    )


def _additive_expr(additive: bool | Collection[str] | None, measure_column: str) -> pl.Expr:
    if additive is None or additive is False:
        return pl.lit(False)
    if additive is True:
        return pl.lit(True)
    return pl.col(measure_column).is_in(list(additive))


def _structure(
    municipal: pl.DataFrame,
    keys: list[str],
    old: set[str],
    new: set[str],
    column: str,
    dated: pl.Expr,
) -> pl.DataFrame:
    """Mark the rows of each slice (same keys but the region) that use 2020 codes.

    A slice holding a code that exists only after the reform is in 2020 codes; one holding
    a code that exists only before it, in 2019 codes; one holding only codes valid in both
    is read as 2019 (the same for every code but 1103 Stavanger and 5001 Trondheim, which
    then count as incomplete merges rather than being guessed). Rows `dated` as 2020 or
    later by the caller's year column are not checked for mixing.
    """
    only_old = pl.col("_code").is_in(list(old - new))
    only_new = pl.col("_code").is_in(list(new - old))
    old_slice, new_slice = only_old.any(), only_new.any()
    if keys:
        old_slice, new_slice = old_slice.over(keys), new_slice.over(keys)
    marked = municipal.with_columns(old_slice.alias("_old"), new_slice.alias("_current"))
    mixed = marked.filter(pl.col("_old") & pl.col("_current") & ~dated)
    if mixed.height:
        first = mixed.row(0, named=True)
        where = ", ".join(f"{k}={first[k]}" for k in keys) or "the table"
        raise HarmoniseError(
            f"{column}: {where} mixes 2019-only and 2020-only codes, so neither structure "
            "applies. Split the table by year, or pass year_column"
        )
    return marked.drop("_old")


def harmonise(
    frame: pl.DataFrame,
    column: str = "region",
    to_year: int = 2020,
    *,
    additive: bool | Collection[str] | None = None,
    measure_column: str = "ContentsCode",
    year_column: str | None = None,
    errors: Literal["raise", "flag"] = "raise",
) -> pl.DataFrame:
    """Map 2019 municipality codes in `column` to 2020 codes; sum merged municipalities
    for additive measures only. Adds a `harmonised` column (one of `FLAGS`).

    - `additive`: True (every measure is a count or an amount), the `measure_column` values
      that are (e.g. {"KOSbefolkning0000"}), or None: nothing is summed.
    - Each slice of the table (rows equal but for the region) is read in the structure its
      codes show: 2020 codes pass through, 2019 codes are mapped, a slice mixing 2019-only
      and 2020-only codes is refused. `year_column` instead reads every row from `to_year`
      on as 2020 (SSB's null placeholder cells for discontinued codes are then dropped).
    - Codes that are not 4 digits (aggregates like "EAK", "K-Rest") pass through untouched.
    - A merged cell is not summed (value null) when its measure is not additive, when a
      predecessor is missing, or when a predecessor was split between several new
      municipalities. `errors="raise"` (default) refuses such cells; `"flag"` returns them.
    """
    if to_year != 2020:
        raise KostraError(f"only the 2020 reform is mapped, not to_year={to_year}")
    for needed in (column, "value", "status"):
        if needed not in frame.columns:
            raise KostraError(f"no column {needed!r} to harmonise (columns: {frame.columns})")
    if FLAG in frame.columns:
        raise KostraError(f"the table already has a {FLAG!r} column: harmonised twice?")
    if isinstance(additive, Collection) and not isinstance(additive, bool | str):
        if measure_column not in frame.columns:
            raise KostraError(f"additive lists measures but there is no {measure_column!r}")
    elif isinstance(additive, str):
        raise KostraError("additive takes True or a collection of measure codes, not a string")

    mapping = reform_2020()
    old_codes = set(mapping["old_code"])
    new_codes = set(mapping["new_code"])
    label = f"{column}_label"
    keys = [c for c in frame.columns if c not in (column, label, "value", "status")]
    parsed = frame.with_columns(
        pl.col(column).cast(pl.String).str.extract(_CODE, 1).alias("_prefix"),
        pl.col(column).cast(pl.String).str.extract(_CODE, 2).alias("_code"),
    )
    other = parsed.filter(pl.col("_code").is_null())
    municipal = parsed.filter(pl.col("_code").is_not_null())

    unknown = municipal.filter(~pl.col("_code").is_in(list(old_codes | new_codes)))
    if unknown.height:
        codes = sorted(set(unknown[column].to_list()))
        raise HarmoniseError(
            f"{column}: {len(codes)} code(s) are neither 2019 nor 2020 municipality codes, "
            f"e.g. {codes[:5]}. Check the source table (codes from after 2020, typos?)"
        )
    dated = pl.lit(False)
    if year_column is not None:
        dated = (pl.col(year_column).cast(pl.Int32, strict=False) >= to_year).fill_null(False)
    municipal = _structure(municipal, keys, old_codes, new_codes, column, dated)
    current = pl.col("_current") | dated
    recent = municipal.filter(current)
    stale = recent.filter(~pl.col("_code").is_in(list(new_codes)))
    if stale.filter(pl.col("value").is_not_null()).height:
        codes = sorted(set(stale.filter(pl.col("value").is_not_null())[column].to_list()))
        raise HarmoniseError(
            f"{column}: rows from {to_year} or later carry 2019-only codes with values, "
            f"e.g. {codes[:5]}. Check {year_column!r} and the source table"
        )
    recent = recent.filter(pl.col("_code").is_in(list(new_codes)))
    older = municipal.filter(~current).join(
        mapping, left_on="_code", right_on="old_code", how="inner"
    )

    predecessors = mapping.group_by("new_code").agg(pl.col("old_code").n_unique().alias("_need"))
    grouped = (
        older.group_by([*keys, "_prefix", "new_code"], maintain_order=True)
        .agg(
            pl.len().alias("_rows"),
            pl.col("_code").n_unique().alias("_have"),
            (pl.col("change") == "split").any().alias("_split"),
            pl.col("change").first().alias("_change"),
            pl.col("new_name").first(),
            pl.col("value").sum().alias("_sum"),
            pl.col("value").is_null().any().alias("_gap"),
            pl.col("value").first().alias("_value"),
            pl.col("status").drop_nulls().first().alias("_status"),
        )
        .join(predecessors, on="new_code", how="left")
    )
    duplicated = grouped.filter(pl.col("_rows") != pl.col("_have"))
    if duplicated.height:
        raise HarmoniseError(
            f"{column}: the same 2019 code appears twice for one cell (e.g. new code "
            f"{duplicated['new_code'][0]}); deduplicate the table first"
        )
    merged = pl.col("_need") > 1
    flag = (
        pl.when(pl.col("_split"))
        .then(pl.lit("split"))
        .when(merged & (pl.col("_have") < pl.col("_need")))
        .then(pl.lit("incomplete"))
        .when(merged & ~_additive_expr(additive, measure_column))
        .then(pl.lit("not_additive"))
        .when(merged)
        .then(pl.lit("summed"))
        .when(pl.col("_change") == "renumbered")
        .then(pl.lit("renumbered"))
        .otherwise(pl.lit("as_is"))
    )
    grouped = grouped.with_columns(flag.alias(FLAG))
    refused = grouped.filter(pl.col(FLAG).is_in(_REFUSED))
    if errors == "raise" and refused.height:
        counts = refused.group_by(FLAG).len().sort(FLAG).rows()
        examples = sorted(set(refused["new_code"].to_list()))[:6]
        raise HarmoniseError(
            f"{column}: {refused.height} merged cell(s) cannot be summed "
            f"({', '.join(f'{n} {kind}' for kind, n in counts)}), new codes e.g. {examples}. "
            "Declare additive measures (additive=...), fetch every predecessor, or pass "
            "errors='flag' to get them as null with the reason in the 'harmonised' column"
        )
    value_dtype = frame.schema["value"]
    if grouped.filter(pl.col(FLAG) == "summed").height and not value_dtype.is_numeric():
        raise HarmoniseError(f"value is {value_dtype}, not numeric: it cannot be summed")
    value = (
        pl.when(pl.col(FLAG).is_in(_REFUSED))
        .then(None)
        .when((pl.col(FLAG) == "summed") & pl.col("_gap"))
        .then(None)  # a missing part (SSB ".." etc.) makes the whole sum unknown
        .when(pl.col(FLAG) == "summed")
        .then(pl.col("_sum"))
        .otherwise(pl.col("_value"))
    )
    mapped = grouped.with_columns(
        (pl.col("_prefix") + pl.col("new_code")).alias(column),
        pl.col("new_name").alias(label),
        value.cast(value_dtype).alias("value"),
        pl.col("_status").alias("status"),
    )
    columns = [*frame.columns, FLAG]
    passed = pl.concat([other, recent.drop("_current")]).with_columns(pl.lit("as_is").alias(FLAG))
    if label not in frame.columns:
        mapped = mapped.drop(label)
    return pl.concat([passed.select(columns), mapped.select(columns)], how="vertical_relaxed")
