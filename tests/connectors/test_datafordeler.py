"""Datafordeler connector against a fake Datafordeleren on 127.0.0.1 (datafordeler_fake.py)
that parses our GraphQL with graphql-core and answers from the REAL samples, sliced by
first/after. What is synthetic (bitemporal values, REST shape) is said in the fake's doc.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import graphql
import polars as pl
import pytest
from graphql.language import FieldNode, OperationDefinitionNode
from graphql.utilities import value_from_ast_untyped
from polars.testing import assert_frame_equal

from connectors.datafordeler import (
    API_KEY_ENV,
    BITEMPORAL_FIELDS,
    DatafordelerError,
    api_key_from_env,
    auth,
    build_query,
    fetch_graphql,
    fetch_rest,
    flatten,
    graphql_pages,
    parse_graphql,
    parse_rest,
    rest_pages,
    to_frame,
)
from connectors.formats.errors import FormatError
from connectors.http import HttpClient, HttpError
from tests.connectors.conftest import FAST, REAL
from tests.connectors.datafordeler_fake import (
    API_KEY,
    REST_BYGNING,
    DafServer,
    bbr_bygninger,
    leaf_paths,
    rest_bygninger,
    sample_entity,
    sample_files,
    sample_nodes,
)
from tests.connectors.fakeserver import FakeServer, FaultSchedule, Recorder

SAMPLES = sample_files(REAL)
AS_OF = "2025-06-04T00:00:00Z"
UTC_TYPE = pl.Datetime("us", "UTC")
BYGNING_FIELDS = [
    "id_lokalId",
    "byg021BygningensAnvendelse",
    "byg026Opfoerelsesaar",
    "byg404Koordinat.wkt",
    "byg404Koordinat.crs",
    "status",
    "forretningshaendelse",
    *BITEMPORAL_FIELDS,
]


def test_the_real_samples_are_there() -> None:
    # Parametrized tests over an empty folder would pass by running nothing.
    assert len(SAMPLES) == 4, SAMPLES


@pytest.fixture
def daf() -> Iterator[DafServer]:
    documents = [json.loads(path.read_bytes()) for path in SAMPLES]
    datasets = {sample_entity(d): sample_nodes(d) for d in documents}
    datasets["BBR_Bygning"] = bbr_bygninger(REAL)
    with FakeServer(faults=FaultSchedule()) as server:
        fake = DafServer(server, datasets)
        fake.rest_records = rest_bygninger(REAL)
        yield fake
    assert not server.errors, server.errors[0]


@pytest.fixture
def client(daf: DafServer) -> Iterator[HttpClient]:
    # Depends on daf, so it is closed first and no keep-alive thread outlives the server.
    with HttpClient(FAST, auth=auth(API_KEY), sleep=Recorder()) as http:
        yield http


def ids(records: list[dict[str, Any]]) -> list[str]:
    return [r["id_lokalId"] for r in records]


# -- queries


def top_field(query: str) -> FieldNode:
    document = graphql.parse(query)
    (operation,) = document.definitions
    assert isinstance(operation, OperationDefinitionNode)
    (top,) = operation.selection_set.selections
    assert isinstance(top, FieldNode)
    return top


def test_build_query_pages_as_of_an_instant_with_a_filter() -> None:
    summer = timezone(timedelta(hours=2))
    where = {
        "adressebetegnelse": {"eq": 'Brombær Alle 6, "Rønhøjgård", 2750 Ballerup\n'},
        "status": {"in": ["2", "3"]},
        "husnummer": {"neq": None},
        "bfeNummer": {"gte": 2154708},
    }
    query = build_query(
        "DAR_Adresse",
        ["id_lokalId", "adresseHarHusnummer.husnummertekst", "AdresseHarEnhed.nodes.bygning"],
        where=where,
        virkningstid=datetime(2025, 6, 4, 2, 0, tzinfo=summer),
        registreringstid=AS_OF,
    )
    top = top_field(query)
    assert top.name.value == "DAR_Adresse"
    args = {a.name.value: a.value for a in top.arguments}
    assert graphql.print_ast(args["first"]) == "$first"
    assert graphql.print_ast(args["after"]) == "$after"
    assert value_from_ast_untyped(args["virkningstid"]) == AS_OF  # converted to UTC
    assert value_from_ast_untyped(args["registreringstid"]) == AS_OF
    assert value_from_ast_untyped(args["where"]) == where  # quotes, æøå, newline survive
    printed = graphql.print_ast(top.selection_set)
    assert "pageInfo {\n    endCursor\n    hasNextPage\n  }" in printed
    assert "AdresseHarEnhed {\n      nodes {\n        bygning" in printed


@pytest.mark.parametrize(
    ("entity", "fields", "kwargs"),
    [
        ("DAR_Adresse", ["id } evil: DAR_Husnummer { id"], {}),
        ("DAR Adresse", ["id_lokalId"], {}),
        ("DAR_Adresse", [], {}),
        ("DAR_Adresse", ["id_lokalId"], {"where": {"status: {eq: 1}} x": {"eq": "3"}}}),
        ("DAR_Adresse", ["id_lokalId"], {"virkningstid": datetime(2025, 6, 4)}),  # naive
    ],
)
def test_build_query_refuses_what_would_change_or_blur_the_query(
    entity: str, fields: list[str], kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):
        build_query(entity, fields, **kwargs)


# -- the real samples


def expected_cells(node: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(column, value) for every leaf outside lists, as the module doc says they flatten."""
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and set(value) == {"nodes"}:
            value = value["nodes"]
        if isinstance(value, dict) and value:
            yield from expected_cells(value, f"{name}__")
        elif isinstance(value, list):
            yield name, value
        else:
            yield name, value


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_every_real_sample_parses_to_flat_typed_rows(path: Path) -> None:
    raw = path.read_bytes()
    document = json.loads(raw)
    entity, nodes = sample_entity(document), sample_nodes(document)
    records = parse_graphql(raw, entity)
    table = to_frame(records)
    assert table.height == len(nodes) >= 1
    for row, node in zip(table.iter_rows(named=True), nodes, strict=True):
        for column, value in expected_cells(node):
            if isinstance(value, list):  # one-to-many: the list, as JSON text
                assert json.loads(row[column]) == value, column
            elif column.endswith("datafordelerOpdateringstid"):
                assert table.schema[column] == UTC_TYPE
                assert row[column] == datetime.fromisoformat(value), column
            elif value is not None:
                assert row[column] == value, column
            elif column in row:  # a null leaf; a null relation yields to its children
                assert row[column] is None, column


def test_real_samples_keep_codes_as_text_and_geometry_as_wkt_and_crs() -> None:
    by_entity = {
        sample_entity(json.loads(p.read_bytes())): to_frame(
            parse_graphql(p.read_bytes(), sample_entity(json.loads(p.read_bytes())))
        )
        for p in SAMPLES
    }
    husnummer = by_entity["DAR_Husnummer"].row(0, named=True)
    assert husnummer["husnummerHoererTilIPostnummer__postnr"] == "2750"
    assert husnummer["husnummerLiggerIKommuneinddeling__kommunekode"] == "0151"  # leading 0
    assert husnummer["husnummerHoererTilSupplerendeBynavn__navn"] == "Rønhøjgård"
    assert husnummer["HusnummerHarAdgangspunkt__position__wkt"] == "POINT (709714.18 6179903.34)"
    assert husnummer["HusnummerHarAdgangspunkt__position__crs"] == 25832
    jordstykker = json.loads(husnummer["husnummerErPlaceretPaaJordstykke"])
    assert jordstykker[0]["jordstykkeLiggerIEjerlav"]["ejerlavsnavn"] == "Ågerup By, Pederstrup"
    adresse = by_entity["DAR_Adresse"]
    assert adresse.schema["datafordelerOpdateringstid"] == UTC_TYPE
    assert adresse["datafordelerOpdateringstid"][0] == datetime(
        2021, 1, 5, 19, 29, 22, 816433, tzinfo=UTC
    )
    assert adresse.schema["adresseHarHusnummer__husnummertekst"] == pl.String
    # a null relation (no supplerende bynavn) is kept as one null column
    assert adresse["adresseHarHusnummer__husnummerHoererTilSupplerendeBynavn"][0] is None


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_real_samples_round_trip_through_the_service(
    path: Path, daf: DafServer, client: HttpClient
) -> None:
    raw = path.read_bytes()
    document = json.loads(raw)
    entity = sample_entity(document)
    fields = leaf_paths(sample_nodes(document))
    extract = fetch_graphql(
        client,
        entity.split("_")[0],
        entity,
        fields,
        virkningstid=AS_OF,
        registreringstid=AS_OF,
        base_url=daf.url,
    )
    # Selecting exactly the sample's fields gives back exactly the sample's table.
    assert_frame_equal(extract.table, to_frame(parse_graphql(raw, entity)))
    assert extract.raw == tuple(daf.sent)
    assert daf.asked == [
        {
            "entity": entity,
            "first": 1000,
            "virkningstid": AS_OF,
            "registreringstid": AS_OF,
        }
    ]


# -- paging, bitemporal columns, resuming


def test_pages_carry_raw_bytes_state_and_typed_bitemporal_columns(
    daf: DafServer, client: HttpClient
) -> None:
    query = build_query("BBR_Bygning", BYGNING_FIELDS, virkningstid=AS_OF)
    pages = list(graphql_pages(client, "BBR", "BBR_Bygning", query, first=2, base_url=daf.url))
    assert [len(p.records) for p in pages] == [2, 2, 2, 1]
    assert [p.raw for p in pages] == daf.sent  # the bytes as received, for landing
    assert [p.media_type for p in pages] == ["application/json"] * 4
    afters = [p.body["variables"].get("after") for p in pages if p.body is not None]
    assert afters == [None] + [p.state["after"] for p in pages[:-1] if p.state]
    assert pages[-1].state is None
    assert all("apiKey=REDACTED" in p.url and API_KEY not in p.url for p in pages)

    records = [r for p in pages for r in p.records]
    assert ids(records) == ids(bbr_bygninger(REAL))
    table = to_frame(records)
    for name in BITEMPORAL_FIELDS:
        assert table.schema[name] == UTC_TYPE, name
    assert table.schema["status"] == pl.String
    assert table.schema["byg026Opfoerelsesaar"] == pl.Int64
    closed = table.row(2, named=True)
    assert closed["virkningTil"] == datetime(2021, 6, 30, 22, tzinfo=UTC)
    assert closed["registreringTil"] == datetime(2021, 7, 1, 6, tzinfo=UTC)
    assert table["virkningTil"].null_count() == 6  # open periods stay null
    # byg404Koordinat is null in row 0 and {wkt, crs} elsewhere: its children carry it
    assert "byg404Koordinat" not in table.columns
    assert table["byg404Koordinat__wkt"].to_list()[:3] == [
        None,
        None,
        "POINT (713074.78 6179943.31)",
    ]


def test_where_filter_reaches_the_service(daf: DafServer, client: HttpClient) -> None:
    where = {"byg021BygningensAnvendelse": {"in": ["930"]}, "byg026Opfoerelsesaar": {"eq": 2013}}
    extract = fetch_graphql(
        client, "BBR", "BBR_Bygning", ["id_lokalId"], where=where, first=2, base_url=daf.url
    )
    assert extract.table["id_lokalId"].to_list() == [
        "a7a49ad1-974b-46e6-a393-2c225b92aebb",
        "b072147a-ff59-4f00-859f-62ed441eaa77",
        "dd02ed61-d1b1-43ef-a621-536554d0d096",
    ]
    assert [a["where"] for a in daf.asked] == [where, where]


def test_resume_from_a_saved_state_gives_exactly_the_remaining_records(
    daf: DafServer, client: HttpClient
) -> None:
    everything = ids(bbr_bygninger(REAL))
    query = build_query("BBR_Bygning", ["id_lokalId"])
    saved: str | None = None
    before: list[str] = []
    for page in graphql_pages(client, "BBR", "BBR_Bygning", query, first=2, base_url=daf.url):
        before += ids(page.records)
        saved = json.dumps(page.state)  # persisted after each page
        if page.number == 2:
            break  # the process dies here
    assert saved is not None
    requests_before = len(daf.asked)
    resumed = fetch_graphql(
        client,
        "BBR",
        "BBR_Bygning",
        ["id_lokalId"],
        first=2,
        state=json.loads(saved),
        base_url=daf.url,
    )
    assert before == everything[:4]
    assert ids(resumed.records) == everything[4:]
    assert len(daf.asked) - requests_before == 2  # pages 3 and 4 only


# -- errors


def test_graphql_errors_in_a_200_answer_say_what_where_and_what_to_do(
    daf: DafServer, client: HttpClient
) -> None:
    with pytest.raises(DatafordelerError) as caught:
        fetch_graphql(
            client, "BBR", "BBR_Bygning", ["id_lokalId", "byg999Findesikke"], base_url=daf.url
        )
    message = str(caught.value)
    assert "BBR_Bygning" in message
    assert "The field `byg999Findesikke` does not exist on the type `BBR_Bygning`" in message
    assert "(at line 6 column 7)" in message  # where in our query
    assert "/BBR/v1/schema" in message and "first page" in message  # what to do, where
    assert caught.value.errors[0]["locations"] == [{"line": 6, "column": 7}]
    assert API_KEY not in message


def test_an_error_on_a_later_page_keeps_earlier_pages_and_names_the_cursor(
    daf: DafServer, client: HttpClient
) -> None:
    query = build_query("BBR_Bygning", ["id_lokalId", "status"])
    received: list[str] = []
    with pytest.raises(DatafordelerError, match="page after cursor") as caught:
        for page in graphql_pages(client, "BBR", "BBR_Bygning", query, first=3, base_url=daf.url):
            received += ids(page.records)
            for node in daf.datasets["BBR_Bygning"][3:]:
                node.pop("status")  # the service changes under us after page 1
    assert received == ids(bbr_bygninger(REAL))[:3]
    assert "`status`" in str(caught.value)


def test_api_key_never_appears_in_errors_urls_or_logs(
    daf: DafServer, client: HttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    # A wrong key: the 401 body echoes it back; the message must not.
    wrong = "wrong-key-Zt5pQ"
    with (
        HttpClient(FAST, auth=auth(wrong), sleep=Recorder()) as other,
        pytest.raises(HttpError) as refused,
    ):
        fetch_graphql(other, "BBR", "BBR_Bygning", ["id_lokalId"], base_url=daf.url)
    assert refused.value.status == 401
    assert wrong not in str(refused.value) and "REDACTED" in str(refused.value)

    # A GraphQL error whose text and extensions echo the request URL, key included.
    daf.echo_url_in_errors = True
    with pytest.raises(DatafordelerError) as caught:
        fetch_graphql(client, "BBR", "BBR_Bygning", ["nope"], base_url=daf.url)
    assert "apiKey=REDACTED" in str(caught.value)
    assert API_KEY not in str(caught.value) + repr(caught.value.errors)

    # Retries log the URL; the key must not be in the log.
    caplog.set_level(logging.DEBUG)
    daf.server.faults = FaultSchedule({len(daf.server.arrivals): "503"})
    daf.echo_url_in_errors = False
    fetch_graphql(client, "BBR", "BBR_Bygning", ["id_lokalId"], base_url=daf.url)
    assert "retrying" in caplog.text
    assert API_KEY not in caplog.text


def test_api_key_comes_from_the_environment_by_name_only() -> None:
    assert api_key_from_env({API_KEY_ENV: f" {API_KEY}\n"}) == API_KEY
    with pytest.raises(DatafordelerError, match=API_KEY_ENV):
        api_key_from_env({})


def test_first_outside_the_service_limits_is_refused_before_any_request(
    client: HttpClient, daf: DafServer
) -> None:
    with pytest.raises(ValueError, match=r"1\.\.1000"):
        fetch_graphql(client, "BBR", "BBR_Bygning", ["id_lokalId"], first=1001, base_url=daf.url)
    assert daf.server.count() == 0


# -- REST


def test_rest_pages_through_page_and_pagesize_to_an_empty_page(
    daf: DafServer, client: HttpClient
) -> None:
    path = REST_BYGNING.lstrip("/")
    pages = list(rest_pages(client, path, {"Kommunekode": "0151"}, pagesize=3, base_url=daf.url))
    assert [len(p.records) for p in pages] == [3, 3, 1, 0]
    assert [a["page"] for a in daf.asked] == [1, 2, 3, 4]
    assert [p.state for p in pages] == [{"page": 2}, {"page": 3}, {"page": 4}, None]
    assert [p.raw for p in pages] == daf.sent
    assert "Kommunekode=0151" in pages[0].url and "apiKey=REDACTED" in pages[0].url
    rest = to_frame([r for p in pages for r in p.records])
    # The same instants as the GraphQL records, though written with +01:00/+02:00.
    graphql_table = to_frame(flatten(n) for n in bbr_bygninger(REAL))
    for name in BITEMPORAL_FIELDS:
        assert rest.schema[name] == UTC_TYPE
        assert rest[name].to_list() == graphql_table[name].to_list(), name
    assert ids(rest.to_dicts()) == ids(bbr_bygninger(REAL))


def test_rest_does_not_stop_early_when_the_service_caps_pagesize(
    daf: DafServer, client: HttpClient
) -> None:
    daf.rest_cap = 2  # we ask for 1000; the service sends 2 per page
    extract = fetch_rest(client, REST_BYGNING, base_url=daf.url)
    assert ids(extract.records) == ids(bbr_bygninger(REAL))
    assert len(extract.raw) == 5  # four pages of data, then the empty one


def test_rest_resume_from_a_saved_state_gives_exactly_the_remaining_records(
    daf: DafServer, client: HttpClient
) -> None:
    first = next(rest_pages(client, REST_BYGNING, pagesize=2, base_url=daf.url))
    saved = json.loads(json.dumps(first.state))
    resumed = fetch_rest(client, REST_BYGNING, pagesize=2, state=saved, base_url=daf.url)
    everything = ids(bbr_bygninger(REAL))
    assert ids(first.records) == everything[:2]
    assert ids(resumed.records) == everything[2:]


# -- pure parsing


def test_timestamps_become_utc_and_bad_ones_are_named() -> None:
    table = to_frame(
        [
            {"virkningFra": "2021-01-05T19:29:22.8164331Z", "virkningTil": None},
            {"virkningFra": "2019-06-19T12:55:26.04+02:00", "virkningTil": "2020-01-01T00:00:00"},
        ]
    )
    assert table["virkningFra"].to_list() == [
        datetime(2021, 1, 5, 19, 29, 22, 816433, tzinfo=UTC),
        datetime(2019, 6, 19, 10, 55, 26, 40000, tzinfo=UTC),
    ]
    assert table["virkningTil"].to_list() == [None, datetime(2020, 1, 1, tzinfo=UTC)]
    with pytest.raises(FormatError, match="registreringFra"):
        to_frame([{"registreringFra": "i går"}])


def test_mixed_value_types_become_text_instead_of_failing() -> None:
    table = to_frame([{"kode": "120"}, {"kode": 120}, {"kode": None}, {"areal": 1}, {"areal": 2.5}])
    assert table["kode"].to_list() == ["120", "120", None, None, None]
    assert table.schema["areal"] == pl.Float64


def test_parse_rest_reads_a_list_and_refuses_anything_else() -> None:
    raw = json.dumps(rest_bygninger(REAL), ensure_ascii=False).encode()
    assert ids(parse_rest(raw)) == ids(bbr_bygninger(REAL))
    with pytest.raises(FormatError, match="not a list of records"):
        parse_rest(b'{"errorMessage": "no such service"}')
