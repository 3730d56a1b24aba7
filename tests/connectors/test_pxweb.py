"""connectors.pxweb: the cell-budget planner, and v0/v2 against a fake SSB on 127.0.0.1
serving the real 07459 json-stat2 answer (whole, or as sub-cubes sliced from it)."""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from connectors.http import HttpClient, HttpSettings
from connectors.jsonstat import to_long
from connectors.pxweb import (
    PlanError,
    PxConfig,
    PxWebError,
    config,
    data,
    fetch_all,
    metadata,
    plan,
    query,
)
from tests.connectors.fakeserver import FakeServer, Reply, Request

SSB = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "real" / "ssb"
DATA_07459 = SSB / "ssb_v0_table_07459_data_jsonstat2_kommuner_2022.json"
BODY_07459 = SSB / "ssb_v0_table_07459_query-body_as_saved_from_statbank.json"
META_05810 = SSB / "ssb_v2_tables_05810_metadata_lang-en_from_docs.json"
FAST = HttpSettings(connect_timeout=2.0, read_timeout=2.0, max_attempts=3, backoff_base=0.01)


def full() -> dict[str, Any]:
    return json.loads(DATA_07459.read_text(encoding="utf-8"))


def sort(table: pl.DataFrame) -> pl.DataFrame:
    return table.sort([c for c in table.columns if c not in ("value", "status")])


# -- planner
def cells_of(requests: list[dict[str, list[str]]]) -> Counter[tuple[str, ...]]:
    return Counter(cell for r in requests for cell in itertools.product(*r.values()))


REGIONS = [f"R{i}" for i in range(12)]
NUMBERS = [str(i) for i in range(100)]
CASES = [
    ({"Region": [f"K{i}" for i in range(359)], "Tid": ["2022"]}, 100, ()),
    ({"Region": REGIONS, "Bolig": ["1", "2", "3"], "Tid": list("abcdefgh")}, 30, ("Tid",)),
    ({"Region": REGIONS, "Bolig": ["1", "2", "3"], "Tid": list("abcdefgh")}, 7, ()),
    ({"A": NUMBERS[:50], "B": NUMBERS[:40], "C": ["x", "y"]}, 3, ("C",)),
    ({"A": NUMBERS[:17], "B": NUMBERS[:13]}, 1, ()),
    ({"A": NUMBERS, "B": NUMBERS[:90]}, 500, ()),
]


@pytest.mark.parametrize(("selections", "limit", "pinned"), CASES)
def test_plan_covers_the_request_once_under_the_limit(
    selections: dict[str, list[str]], limit: int, pinned: tuple[str, ...]
) -> None:
    requests = plan(selections, limit, pinned=pinned)
    assert all(math.prod(len(v) for v in r.values()) <= limit for r in requests)
    assert all(list(r) == list(selections) for r in requests)  # dimension order kept
    seen = cells_of(requests)
    assert set(seen) == set(itertools.product(*selections.values()))
    assert max(seen.values()) == 1  # no overlap
    for dim in pinned:
        assert all(r[dim] == selections[dim] for r in requests)
    # no more requests than needed to cover the cells in this many-dimensional grid
    assert len(requests) <= 2 * math.ceil(math.prod(map(len, selections.values())) / limit) + 1


def test_a_request_under_the_limit_is_one_chunk() -> None:
    selections = {"Region": ["0301", "4601"], "Tid": ["2023", "2024"]}
    assert plan(selections, 4) == [selections]
    assert plan(selections, 800_000, pinned=("Tid",)) == [selections]


def test_plan_splits_the_largest_dimension_into_even_parts() -> None:
    selections = {"Tid": ["2022", "2023"], "Region": [f"K{i}" for i in range(359)]}
    requests = plan(selections, 200)
    assert [len(r["Region"]) for r in requests] == [90, 90, 90, 89]
    assert all(r["Tid"] == ["2022", "2023"] for r in requests)


def test_impossible_requests_raise_clearly() -> None:
    with pytest.raises(PlanError, match=r"\['Tid'\] alone make 49 cells, over the limit of 10"):
        plan({"Tid": [str(y) for y in range(49)], "Kjonn": ["1", "2"]}, 10, pinned=("Tid",))
    with pytest.raises(PlanError, match="max_cells must be >= 1"):
        plan({"Tid": ["2024"]}, 0)
    with pytest.raises(PlanError, match="not in the selection"):
        plan({"Tid": ["2024"]}, 10, pinned=("Alder",))
    with pytest.raises(PlanError, match="twice"):
        plan({"Tid": ["2024", "2024"]}, 1)


# -- a fake SSB
def slice_cube(doc: dict[str, Any], wanted: dict[str, list[str]]) -> dict[str, Any]:
    """The json-stat2 answer for a sub-selection, cut from a full answer by index arithmetic."""
    ids, sizes = doc["id"], doc["size"]
    index = {d: doc["dimension"][d]["category"]["index"] for d in ids}
    codes = {d: sorted(index[d], key=index[d].get) for d in ids}
    keep = {d: wanted.get(d, codes[d]) for d in ids}
    strides = [math.prod(sizes[i + 1 :]) for i in range(len(ids))]
    values = []
    for combo in itertools.product(*(keep[d] for d in ids)):
        k = sum(codes[d].index(c) * s for d, c, s in zip(ids, combo, strides, strict=True))
        values.append(doc["value"][k])
    dimension = {}
    for d in ids:
        category = doc["dimension"][d]["category"]
        dimension[d] = {
            "label": doc["dimension"][d]["label"],
            "category": {
                "index": {c: i for i, c in enumerate(keep[d])},
                "label": {c: category["label"][c] for c in keep[d]},
            },
        }
    return doc | {"size": [len(keep[d]) for d in ids], "dimension": dimension, "value": values}


@pytest.fixture
def ssb() -> Iterator[FakeServer]:
    with FakeServer() as server:
        yield server
    assert not server.errors, server.errors[0]


def test_v0_query_posts_the_statbank_body_and_reads_the_real_answer(ssb: FakeServer) -> None:
    saved = json.loads(BODY_07459.read_text(encoding="utf-8"))
    answer = DATA_07459.read_bytes()
    bodies: list[Any] = []

    @ssb.route("POST", "/api/v0/no/table/07459")
    def table(request: Request) -> Reply:
        assert request.headers["Content-Type"] == "application/json"
        bodies.append(request.json())
        return Reply(200, answer, {"Content-Type": "application/json; charset=utf-8"})

    query_obj = saved["queryObj"]
    selections = {q["code"]: q["selection"]["values"] for q in query_obj["query"]}
    filters = {q["code"]: q["selection"]["filter"] for q in query_obj["query"]}
    with HttpClient(FAST) as client:
        result = query(client, ssb.url + "/api/v0", "07459", selections, "no", filters=filters)
    assert bodies == [query_obj]  # exactly what Statbank's "API query" saves
    assert result.raw == answer
    assert result.table.height == 359
    assert result.table.equals(to_long(full()))
    oslo = result.table.filter(pl.col("Region") == "K-0301").row(0, named=True)
    assert oslo["Region_label"] == "Oslo" and oslo["value"] == pytest.approx(full()["value"][51])


def test_v2_config_metadata_and_data(ssb: FakeServer) -> None:
    doc = full()
    seen: list[dict[str, list[str]]] = []

    @ssb.route("GET", "/api/pxwebapi/v2/config")
    def cfg(request: Request) -> Reply:
        return Reply.json({"apiVersion": "2.0.0", "maxDataCells": 150000})

    @ssb.route("GET", "/api/pxwebapi/v2/tables/05810/metadata")
    def meta(request: Request) -> Reply:
        assert request.arg("lang") == "en" and request.arg("outputFormat") == "json-stat2"
        return Reply(200, META_05810.read_bytes(), {"Content-Type": "application/json"})

    @ssb.route("GET", "/api/pxwebapi/v2/tables/07459/data")
    def table(request: Request) -> Reply:
        seen.append(request.query)
        wanted = {"Region": request.arg("valueCodes[Region]", "").split(",")}
        return Reply.json(slice_cube(doc, wanted))

    base = ssb.url + "/api/pxwebapi/v2"
    with HttpClient(FAST) as client:
        assert config(client, base) == PxConfig(150000, 30, 60.0)  # defaults for absent fields
        assert metadata(client, base, "05810", "en")["size"] == [3, 7, 1, 49]
        result = data(client, base, "07459", {"Region": ["K-3024", "K-0301"], "Tid": ["2022"]})
    assert seen[0]["valueCodes[Region]"] == ["K-3024,K-0301"]
    assert seen[0]["valueCodes[Tid]"] == ["2022"]
    assert result.table["Region_label"].to_list() == ["Bærum", "Oslo"]
    assert json.loads(result.raw)["size"] == [2, 1, 1]


def mount_planned_ssb(server: FakeServer, limit: int, calls: int, window: float) -> list[int]:
    doc = full()
    asked: list[int] = []

    @server.route("GET", "/api/pxwebapi/v2/config")
    def cfg(request: Request) -> Reply:
        return Reply.json(
            {"maxDataCells": limit, "maxCallsPerTimeWindow": calls, "timeWindow": window}
        )

    def answer(wanted: dict[str, list[str]]) -> Reply:
        cube = slice_cube(doc, wanted)
        asked.append(math.prod(cube["size"]))
        if asked[-1] > limit:  # what SSB does with too big a request
            return Reply.json({"error": "too many cells"}, status=403)
        return Reply.json(cube)

    @server.route("GET", "/api/pxwebapi/v2/tables/07459/data")
    def v2(request: Request) -> Reply:
        asked_for = request.query.items()
        return answer({k[11:-1]: v[0].split(",") for k, v in asked_for if k[:11] == "valueCodes["})

    @server.route("POST", "/api/v0/no/table/07459")
    def v0(request: Request) -> Reply:
        return answer({q["code"]: q["selection"]["values"] for q in request.json()["query"]})

    return asked


def test_fetch_all_v2_splits_paces_and_matches_one_request(ssb: FakeServer) -> None:
    asked = mount_planned_ssb(ssb, limit=100, calls=2, window=0.4)
    doc = full()
    regions = list(doc["dimension"]["Region"]["category"]["index"])
    selections = {"Region": regions, "ContentsCode": ["Personer1"], "Tid": ["2022"]}
    table, limits, requests = fetch_all(
        ssb.url + "/api/pxwebapi/v2", "07459", selections, pinned=("Tid",), settings=FAST
    )
    assert limits == PxConfig(100, 2, 0.4)
    assert len(requests) == 4 and asked == [90, 90, 90, 89]
    assert ssb.count("/api/pxwebapi/v2/config") == 1
    assert ssb.max_in_window(0.4) <= 2  # /config included
    assert table.height == 359
    assert table.select("Region", "ContentsCode", "Tid").is_duplicated().sum() == 0
    assert sort(table).equals(sort(to_long(doc)))
    assert table.equals(to_long(doc))  # Region is the first dimension: order is kept too


def test_fetch_all_v0_uses_given_limits(ssb: FakeServer) -> None:
    asked = mount_planned_ssb(ssb, limit=120, calls=3, window=0.3)
    doc = full()
    regions = list(doc["dimension"]["Region"]["category"]["index"])
    table, _, requests = fetch_all(
        ssb.url + "/api/v0",
        "07459",
        {"Region": regions, "Tid": ["2022"]},
        api="v0",
        limits=PxConfig(max_cells=120, max_calls=3, time_window=0.3),
        settings=FAST,
    )
    assert len(requests) == 3 and max(asked) <= 120
    assert ssb.max_in_window(0.3) <= 3
    assert sort(table).equals(sort(to_long(doc)))


def test_a_piece_missing_codes_it_asked_for_is_refused(ssb: FakeServer) -> None:
    # A revised table whose code list lost a region: the piece is one region short, which
    # would otherwise load as a smaller table without a word.
    doc = full()
    regions = list(doc["dimension"]["Region"]["category"]["index"])

    @ssb.route("GET", "/api/pxwebapi/v2/tables/07459/data")
    def table(request: Request) -> Reply:
        wanted = request.arg("valueCodes[Region]", "").split(",")
        return Reply.json(slice_cube(doc, {"Region": [r for r in wanted if r != "K-0301"]}))

    with pytest.raises(
        PxWebError, match=r"for Region does not match the request \(missing K-0301\)"
    ):
        fetch_all(
            ssb.url + "/api/pxwebapi/v2",
            "07459",
            {"Region": regions, "Tid": ["2022"]},
            limits=PxConfig(max_cells=100),
            settings=FAST,
        )


def test_pieces_with_filters_other_than_item_are_not_compared(ssb: FakeServer) -> None:
    # `agg:` answers in the aggregation's own codes, not the ones sent.
    doc = full()
    seen: list[Any] = []

    @ssb.route("POST", "/api/v0/no/table/07459")
    def v0(request: Request) -> Reply:
        seen.append(request.json())
        return Reply.json(slice_cube(doc, {"Region": ["K-0301", "K-3024"], "Tid": ["2022"]}))

    table, _, _ = fetch_all(
        ssb.url + "/api/v0",
        "07459",
        {"Region": ["Fylker"], "Tid": ["2022"]},
        api="v0",
        filters={"Region": "agg:KommSummer"},
        limits=PxConfig(),
        settings=FAST,
    )
    assert seen[0]["query"][0]["selection"]["filter"] == "agg:KommSummer"
    assert sorted(table["Region"].unique().to_list()) == ["K-0301", "K-3024"]


def test_v2_sends_a_selection_too_long_for_a_get_as_a_post_body(ssb: FakeServer) -> None:
    doc = full()
    regions = list(doc["dimension"]["Region"]["category"]["index"])
    posted: list[Any] = []

    @ssb.route("GET", "/api/pxwebapi/v2/tables/07459/data")
    def get(request: Request) -> Reply:
        return Reply(414, b"URI Too Long")  # what a server does past its GET limit

    @ssb.route("POST", "/api/pxwebapi/v2/tables/07459/data")
    def post(request: Request) -> Reply:
        assert request.arg("outputFormat") == "json-stat2" and request.arg("lang") == "no"
        posted.append(request.json())
        wanted = {s["variableCode"]: s["valueCodes"] for s in request.json()["selection"]}
        return Reply.json(slice_cube(doc, wanted))

    table, _, requests = fetch_all(
        ssb.url + "/api/pxwebapi/v2",
        "07459",
        {"Region": regions, "Tid": ["2022"]},
        limits=PxConfig(),
        settings=FAST,
    )
    assert len(requests) == 1 and ssb.count("/api/pxwebapi/v2/tables/07459/data") == 1
    assert posted[0]["selection"][0] == {"variableCode": "Region", "valueCodes": regions}
    assert table.equals(to_long(doc))
