"""connectors.kostra: publication labels and history, and the 2020 reform mapping checked
against SSB's real 2022 municipality table (07459)."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest

from connectors.jsonstat import to_long
from connectors.kostra import (
    HarmoniseError,
    KostraError,
    PublicationConflict,
    append_publication,
    harmonise,
    publication_for,
    reform_2020,
    revisions,
    stamp_publication,
)

SSB = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "real" / "ssb"
DATA_07459 = SSB / "ssb_v0_table_07459_data_jsonstat2_kommuner_2022.json"


@pytest.fixture(scope="module")
def table_2022() -> pl.DataFrame:
    return to_long(json.loads(DATA_07459.read_text(encoding="utf-8")))


def municipalities_2022(table: pl.DataFrame) -> dict[str, str]:
    rows = table.filter(pl.col("Region").str.contains(r"^K-\d{4}$"))
    return dict(zip(rows["Region"].str.slice(2), rows["Region_label"], strict=True))


def long_2019(values: dict[str, float | None], measure: str = "Personer") -> pl.DataFrame:
    """A long table in 2019 codes, shaped like to_long's."""
    names = dict(reform_2020().select("old_code", "old_name").unique().iter_rows())
    codes = list(values)
    return pl.DataFrame(
        {
            "Region": codes,
            "Region_label": [names[c] for c in codes],
            "ContentsCode": [measure] * len(codes),
            "Tid": ["2019"] * len(codes),
            "value": [values[c] for c in codes],
            "status": [None if values[c] is not None else ".." for c in codes],
        },
        schema_overrides={"value": pl.Float64, "status": pl.String},
    )


# -- the mapping itself
def test_new_codes_are_exactly_the_municipalities_ssb_lists_for_2022(
    table_2022: pl.DataFrame,
) -> None:
    mapping = reform_2020()
    listed = municipalities_2022(table_2022)
    assert len(listed) == 356
    assert set(mapping["new_code"]) == set(listed)
    assert mapping["old_code"].n_unique() == 422  # municipalities on 31 December 2019
    # names agree with SSB's labels (which drop or add some Sami/Kven parallel names)
    for code, name in mapping.select("new_code", "new_name").unique().iter_rows():
        ours, theirs = set(name.split(" - ")), {p.strip() for p in listed[code].split(" - ")}
        assert ours & theirs or name == "Kárášjohka - Karasjok", (code, name, listed[code])


def test_mapping_follows_the_reform() -> None:
    mapping = reform_2020()
    new = dict(mapping.filter(pl.col("change") != "split").select("old_code", "new_code").rows())
    assert new["0301"] == "0301"  # Oslo kept its code
    assert new["0101"] == "3001" and new["1201"] == "4601" and new["1902"] == "5401"
    assert {new[c] for c in ("1001", "1017", "1018")} == {"4204"}  # Kristiansand
    assert {new[c] for c in ("0122", "0123", "0124", "0125", "0138")} == {"3014"}
    assert new["1444"] == "1577"  # Hornindal left Sogn og Fjordane for Volda
    assert new["1852"] == "5412"  # Tjeldsund left Nordland for Troms og Finnmark
    counties = {c[:2] for c in mapping["new_code"]}
    assert counties == {"03", "11", "15", "18", "30", "34", "38", "42", "46", "50", "54"}
    splits = mapping.filter(pl.col("change") == "split")
    assert dict(splits.group_by("old_code").agg(pl.col("new_code").sort()).rows()) == {
        "1850": ["1806", "1875"],
        "5012": ["5055", "5056", "5059"],
    }


# -- harmonise
def test_2022_table_passes_through_unchanged(table_2022: pl.DataFrame) -> None:
    out = harmonise(table_2022, column="Region")
    assert out["harmonised"].unique().to_list() == ["as_is"]
    assert out.drop("harmonised").sort("Region").equals(table_2022.sort("Region"))


def test_merges_are_summed_for_additive_measures() -> None:
    parts = {"0122": 5.0, "0123": 6.0, "0124": 16.0, "0125": 11.0, "0138": 5.0, "0101": 31.0}
    parts |= {"0301": 690.0, "1103": 144.0, "1141": 3.0, "1142": 4.9}
    out = harmonise(long_2019(parts), column="Region", additive=True).sort("Region")
    rows = {r["Region"]: r for r in out.iter_rows(named=True)}
    assert set(rows) == {"0301", "1103", "3001", "3014"}
    assert rows["3014"]["value"] == 43.0 and rows["3014"]["harmonised"] == "summed"
    assert rows["3014"]["Region_label"] == "Indre Østfold"
    assert rows["1103"]["value"] == pytest.approx(151.9)
    assert rows["3001"]["value"] == 31.0 and rows["3001"]["harmonised"] == "renumbered"
    assert rows["0301"]["value"] == 690.0 and rows["0301"]["harmonised"] == "as_is"


def test_whole_2019_country_harmonises_to_356_codes_with_splits_flagged() -> None:
    ones = dict.fromkeys(reform_2020()["old_code"].unique().to_list(), 1.0)
    out = harmonise(long_2019(ones), column="Region", additive=True, errors="flag")
    assert out.height == 356
    flags = dict(zip(out["Region"], out["harmonised"], strict=True))
    values = dict(zip(out["Region"], out["value"], strict=True))
    assert {c for c, f in flags.items() if f == "split"} == {"1806", "1875", "5055", "5056", "5059"}
    assert all(values[c] is None for c in ("1806", "1875", "5055", "5056", "5059"))
    assert values["3030"] == 3.0 and values["1507"] == 5.0 and values["5421"] == 4.0
    assert values["0301"] == 1.0
    with pytest.raises(HarmoniseError, match="5 split"):
        harmonise(long_2019(ones), column="Region", additive=True)


def test_ratios_are_not_summed() -> None:
    table = long_2019({"0213": 12.5, "0217": 14.0, "0211": 9.1}, measure="andel_prosent")
    with pytest.raises(HarmoniseError, match=r"1 not_additive.*3020"):
        harmonise(table, column="Region", additive={"Personer"})
    out = harmonise(table, column="Region", additive={"Personer"}, errors="flag").sort("Region")
    assert out["Region"].to_list() == ["3019", "3020"]
    assert out["value"].to_list() == [9.1, None]  # a 1:1 renumbering keeps any measure
    assert out["harmonised"].to_list() == ["renumbered", "not_additive"]


def test_missing_predecessor_or_missing_value_is_never_summed() -> None:
    with pytest.raises(HarmoniseError, match="incomplete"):
        harmonise(long_2019({"0226": 1.0, "0227": 2.0}), column="Region", additive=True)
    gap = harmonise(
        long_2019({"0226": 1.0, "0227": None, "0231": 3.0}), column="Region", additive=True
    )
    assert gap["value"].to_list() == [None] and gap["status"].to_list() == [".."]


def test_year_column_separates_old_and_new_stavanger() -> None:
    table = pl.concat(
        [
            long_2019({"1103": 10.0, "1141": 1.0, "1142": 2.0}),
            long_2019({"1103": 20.0, "1141": None}).with_columns(pl.lit("2021").alias("Tid")),
        ]
    )
    out = harmonise(table, column="Region", additive=True, year_column="Tid").sort("Tid")
    assert out.select("Region", "Tid", "value").rows() == [
        ("1103", "2019", 13.0),
        ("1103", "2021", 20.0),  # already 2020 Stavanger; Finnøy's null placeholder dropped
    ]


def test_unknown_codes_are_refused_and_aggregates_pass() -> None:
    with pytest.raises(HarmoniseError, match="3101"):
        harmonise(long_2019({"0101": 1.0}).with_columns(pl.lit("3101").alias("Region")), "Region")
    aggregate = long_2019({"0101": 1.0}).with_columns(pl.lit("EAK").alias("Region"))
    assert harmonise(aggregate, "Region")["Region"].to_list() == ["EAK"]
    with pytest.raises(KostraError, match="only the 2020 reform"):
        harmonise(aggregate, "Region", to_year=2024)


# -- publications
@pytest.mark.parametrize(
    ("fetched", "label"),
    [
        (date(2024, 3, 15), "2023-unrevised"),
        (date(2024, 6, 14), "2023-unrevised"),
        (datetime(2024, 6, 15, 9, 0), "2023-revised"),
        (date(2026, 1, 2), "2023-revised"),
    ],
)
def test_publication_labels(fetched: date, label: str) -> None:
    assert publication_for(fetched, 2023) == label


def test_no_publication_before_15_march() -> None:
    with pytest.raises(KostraError, match="first published on 2024-03-15"):
        publication_for(date(2024, 3, 14), 2023)
    assert publication_for(date(2024, 3, 14), 2023, unrevised_on=date(2024, 3, 13)) == (
        "2023-unrevised"
    )


def test_history_keeps_each_publication_and_lists_revisions(table_2022: pl.DataFrame) -> None:
    march = stamp_publication(table_2022, date(2023, 3, 20))
    assert march["publication"].unique().to_list() == ["2022-unrevised"]
    assert march["fetched_at"].unique().to_list() == [date(2023, 3, 20)]
    revised_table = table_2022.with_columns(
        pl.when(pl.col("Region") == "K-0301")
        .then(pl.col("value") + 7)
        .otherwise(pl.col("value"))
        .alias("value")
    )
    june = stamp_publication(revised_table, date(2023, 6, 16))
    history = append_publication(append_publication(None, march), june)
    assert history.height == 2 * table_2022.height  # the revision did not overwrite
    assert append_publication(history, june).equals(history)  # a replay adds nothing

    changed = revisions(history, "2022-unrevised", "2022-revised")
    assert changed["Region"].to_list() == ["K-0301"]
    oslo = changed.row(0, named=True)
    assert oslo["value_later"] - oslo["value_earlier"] == 7

    tampered = june.with_columns(pl.col("value") + 1)
    with pytest.raises(PublicationConflict, match="359 cell"):
        append_publication(history, tampered)


def test_a_slice_mixing_both_structures_is_refused() -> None:
    mixed = long_2019({"0101": 1.0, "0104": 2.0}).with_columns(
        pl.Series("Region", ["0101", "3002"])
    )
    with pytest.raises(HarmoniseError, match="mixes 2019-only and 2020-only"):
        harmonise(mixed, "Region", additive=True)
