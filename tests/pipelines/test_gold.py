"""Gold models on hand-built silver tables, so every branch of the SQL is pinned down."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import zoneinfo
from pathlib import Path

import polars as pl

from lake.tables import write_batch
from pipelines.gold.models import LAKE_TIME_ZONE, MODELS, build

REPO = Path(__file__).resolve().parents[2]

MODEL = {m.name: m for m in MODELS}
ADDR = {"a1": ("Skovvej", "12", "1", "th", "4000"), "a2": ("Kirkegade", "3", None, None, "4000")}
INGESTED = dt.datetime(2026, 11, 1, 6, tzinfo=dt.UTC)


def _silver(home, name: str, rows: list[dict], ingested: dt.datetime = INGESTED) -> None:
    frame = pl.DataFrame(rows).with_columns(
        pl.lit(ingested).alias("_ingested_at"), pl.int_range(2, len(rows) + 2).alias("_source_row")
    )
    write_batch(home.table_uri("silver", name), frame, mode="snapshot", app_id=f"{name}-1")


def _registers(home, ingested: dt.datetime = INGESTED) -> None:
    _silver(
        home,
        "dar_addresses",
        [
            {
                "address_id": k,
                "street": s,
                "house_number": n,
                "floor": f,
                "door": d,
                "postcode": p,
                "municipality_code": "0350",
                "district": "Midtbyen",
            }
            for k, (s, n, f, d, p) in ADDR.items()
        ],
        ingested,
    )
    _silver(
        home,
        "cpr_persons",
        [
            {"cpr": "p1", "birth_date": dt.date(1940, 5, 1), "address_id": "a1"},
            {"cpr": "p2", "birth_date": dt.date(1950, 11, 2), "address_id": "a2"},
            {"cpr": "p3", "birth_date": dt.date(2010, 1, 1), "address_id": "a2"},
            {"cpr": "p4", "birth_date": dt.date(1930, 1, 1), "address_id": "gone"},  # not in DAR
        ],
        ingested,
    )


def test_meal_list_reconciliation_tells_each_kind_of_drift(home) -> None:
    _registers(home)
    _silver(
        home,
        "meal_delivery_list",
        [
            {"cpr": "p1", "address_text": "Skovvej 12, 1. th", "postcode": "4000"},  # as registered
            {"cpr": "p2", "address_text": "kirkegade  3", "postcode": "4000"},  # spacing/case only
            {"cpr": "p1", "address_text": "Skovv. 12, 1. th", "postcode": "4000"},  # abbreviation
            {"cpr": "p2", "address_text": "Kirkegade 3", "postcode": "4001"},  # wrong postcode
            {"cpr": "p9", "address_text": "Kirkegade 3", "postcode": "4000"},  # nobody in CPR
            {"cpr": "p4", "address_text": "Møllevej 1", "postcode": "4000"},
        ],
    )
    _, table = build(home, MODEL["meal_delivery_reconciliation"])
    assert table.select("list_row", "status").rows() == [
        (2, "matches"),
        (3, "matches"),
        (4, "address_differs"),
        (5, "address_differs"),
        (6, "not_in_cpr"),
        (7, "registered_address_not_in_dar"),
    ]


def test_population_counts_only_known_addresses_and_ages_at_the_extract(home) -> None:
    _registers(home)
    commit, table = build(home, MODEL["population_by_district"])
    [row] = table.rows(named=True)
    # p4 lives at an address DAR does not know; ages are taken at the CPR load date.
    assert (row["persons"], row["households"]) == (3, 2)
    assert (row["persons_0_17"], row["persons_18_64"], row["persons_65_plus"]) == (1, 0, 2)
    again, recomputed = build(home, MODEL["population_by_district"])
    assert commit.committed and not again.committed and recomputed is None


def test_an_empty_result_is_still_a_table_with_its_columns(home) -> None:
    _registers(home)
    _silver(home, "meal_delivery_list", [{"cpr": "p1", "address_text": "x", "postcode": "4000"}])
    write_batch(
        home.table_uri("silver", "meal_delivery_list"),
        pl.read_delta(home.table_uri("silver", "meal_delivery_list")).clear(),
        mode="snapshot",
        app_id="empty",
    )
    _, table = build(home, MODEL["meal_delivery_reconciliation"])
    assert table.height == 0 and table.columns == ["cpr", "list_row", "district", "status"]
    assert pl.read_delta(home.table_uri("gold", "meal_delivery_reconciliation")).height == 0


def test_a_register_kept_as_scd2_history_counts_only_its_current_rows(home) -> None:
    """cpr_persons switched to `load_mode: scd2`: p1 moved from a1 to a2 and p3 left, so
    silver holds their closed versions beside the current ones."""
    _registers(home)
    shutil.rmtree(home.table_uri("silver", "cpr_persons"))  # a table of the new shape
    closed, now = dt.datetime(2026, 10, 1, tzinfo=dt.UTC), dt.datetime(9999, 12, 31, tzinfo=dt.UTC)
    versions = [  # cpr, address, is_current
        ("p1", "a1", False),
        ("p1", "a2", True),
        ("p2", "a2", True),
        ("p3", "a2", False),
    ]
    born = {"p1": dt.date(1940, 5, 1), "p2": dt.date(1950, 11, 2), "p3": dt.date(2010, 1, 1)}
    _silver(
        home,
        "cpr_persons",
        [
            {
                "cpr": cpr,
                "birth_date": born[cpr],
                "address_id": address,
                "valid_from": dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
                "valid_to": now if current else closed,
                "is_current": current,
            }
            for cpr, address, current in versions
        ],
    )
    _, table = build(home, MODEL["population_by_district"])
    [row] = table.rows(named=True)
    assert (row["persons"], row["households"], row["persons_65_plus"]) == (2, 1, 2)


_AS_OF_IN_CHILD = """
import sys
from pathlib import Path
from lake.home import Home
from pipelines.gold.models import MODELS, compute
model = {m.name: m for m in MODELS}["population_by_district"]
print(compute(Home(Path(sys.argv[1])), model)["as_of"].unique().to_list())
"""


def test_the_as_of_date_is_the_same_day_on_a_machine_in_any_time_zone(home) -> None:
    """Loaded at 23:30 UTC: already the next day in Denmark and Norway, still the same
    day in California. The date is the lake's calendar day, not the machine's."""
    loaded = dt.datetime(2026, 11, 23, 23, 30, tzinfo=dt.UTC)
    _registers(home, loaded)
    expected = loaded.astimezone(zoneinfo.ZoneInfo(LAKE_TIME_ZONE)).date()
    for zone in ("America/Los_Angeles", "Asia/Tokyo"):
        child = subprocess.run(
            [sys.executable, "-c", _AS_OF_IN_CHILD, str(home.root)],
            cwd=REPO,
            env={**os.environ, "TZ": zone},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert child.returncode == 0, child.stderr[-2000:]
        assert child.stdout.strip() == repr([expected]), zone
