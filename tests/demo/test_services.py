"""The Demo Kommune's local HTTP services (connectors.demo.services) against the real shapes.

The Datafordeler answers are compared with the real GraphQL answers and the StatBank answers
with the real STRAF42/FOLK1A recordings in shared/fixtures/real (field names, keys, value
types, CSV bytes layout); our own StatBank connector must read the StatBank-like server.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.demo import generate
from connectors.demo.places import DISTRICTS
from connectors.demo.services import DEMO_API_KEY, DemoServices, ServiceUrls
from connectors.demo.services.datafordeler import MAX_PAGE_SIZE, format_time
from connectors.demo.services.registers import build_registers
from connectors.demo.services.statbank import QUARTERS
from connectors.http import HttpClient
from connectors.statbank import StatbankError, fetch, table_info
from tests.conftest import REAL_FIXTURES
from tests.demo.conftest import LOCAL, PERSONS, SEED

DAF = REAL_FIXTURES / "datafordeler"
DST = REAL_FIXTURES / "dst"


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10, trust_env=False) as client:
        yield client


def gql(
    http: httpx.Client,
    urls: ServiceUrls,
    query: str,
    variables: dict[str, Any] | None = None,
    register: str = "DAR",
) -> dict[str, Any]:
    response = http.post(
        f"{urls.datafordeler}/{register}/v1",
        params={"apiKey": urls.api_key},
        json={"query": query, "variables": variables or {}},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def real(name: str) -> Any:
    return json.loads((DAF / name).read_text("utf-8"))


def scalar_fields(node: dict[str, Any]) -> dict[str, Any]:
    """The plain (non-null, non-object) fields of a real node: what a flat entity must have."""
    return {k: v for k, v in node.items() if v is not None and not isinstance(v, dict | list)}


def real_nodes() -> dict[str, list[dict[str, Any]]]:
    """Nodes of each entity as the real answers show them (top-level or nested)."""
    adresse = real(
        "graphql_DAR_Adresse_Lundagervej43_superquery_with_BBR_Enhed_Bygning_TekniskAnlaeg.json"
    )["data"]["DAR_Adresse"]["nodes"][0]
    husnummer = real("graphql_DAR_Husnummer_Brombaer_Alle_6_Ballerup.json")["data"][
        "DAR_Husnummer"
    ]["nodes"][0]
    geodkv = real("graphql_GEODKV_Bygning_1069796594_to_BBR_Bygning_Enhed.json")["data"][
        "GEODKV_Bygning"
    ]["nodes"][0]["referererTil"]
    jordstykke = adresse["adresseHarHusnummer"]["husnummerErPlaceretPaaJordstykke"]["nodes"][0]
    return {
        "DAR_Adresse": [adresse],
        "DAR_Husnummer": [husnummer, adresse["adresseHarHusnummer"]],
        "BBR_Bygning": [geodkv, *jordstykke["id_lokalId_18_Bygning_jordstykke_ref"]["nodes"]],
        "BBR_Enhed": [*adresse["AdresseHarEnhed"]["nodes"], *geodkv["liggerIBygning"]["nodes"]],
    }


# --- Datafordeler-like GraphQL -------------------------------------------------------------


@pytest.mark.parametrize("entity", ["DAR_Adresse", "DAR_Husnummer", "BBR_Bygning", "BBR_Enhed"])
def test_graphql_nodes_have_the_real_field_names_and_types(http, urls, entity):
    for sample in real_nodes()[entity]:
        fields = scalar_fields(sample)
        register = entity.split("_")[0]
        answer = gql(http, urls, f"{{ {entity}(first: 5) {{ nodes {{ {' '.join(fields)} }} }} }}",
                     register=register)  # fmt: skip
        assert set(answer) == {"data"}  # as the real answers: no errors key when all is well
        nodes = answer["data"][entity]["nodes"]
        assert len(nodes) == 5
        for node in nodes:
            assert list(node) == list(fields)
            for name, value in node.items():
                if value is not None:
                    assert type(value) is type(fields[name]), (entity, name, value)


def test_graphql_geometry_and_timestamps_look_like_the_real_ones(http, urls):
    real_point = real_nodes()["BBR_Bygning"][-1]["byg404Koordinat"]
    answer = gql(
        http,
        urls,
        "{ BBR_Bygning(first: 3) { nodes { byg404Koordinat { wkt crs } "
        "virkningFra virkningTil registreringFra registreringTil datafordelerOpdateringstid } } }",
        register="BBR",
    )
    for node in answer["data"]["BBR_Bygning"]["nodes"]:
        assert set(node["byg404Koordinat"]) == set(real_point)
        assert node["byg404Koordinat"]["crs"] == real_point["crs"] == 25832
        assert node["byg404Koordinat"]["wkt"].startswith("POINT (")
        # Same layout as the real "2021-01-05T19:29:22.816433Z".
        stamp = node["datafordelerOpdateringstid"]
        assert len(stamp) == len("2021-01-05T19:29:22.816433Z") and stamp.endswith("Z")
        assert node["virkningTil"] is None and node["registreringTil"] is None


def test_graphql_connection_has_relay_edges_and_page_info(http, urls):
    answer = gql(
        http,
        urls,
        "{ DAR_Husnummer(first: 3) { edges { cursor node { id_lokalId } } nodes { id_lokalId } "
        "pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }",
    )
    connection = answer["data"]["DAR_Husnummer"]
    assert [e["node"] for e in connection["edges"]] == connection["nodes"]
    info = connection["pageInfo"]
    assert info["hasNextPage"] is True and info["hasPreviousPage"] is False
    assert info["startCursor"] == connection["edges"][0]["cursor"]
    assert info["endCursor"] == connection["edges"][-1]["cursor"]


def test_paging_with_first_and_after_returns_every_address_once(http, urls, services):
    query = (
        "query Page($first: Int, $after: String) { DAR_Adresse(first: $first, after: $after, "
        'where: {kommunekode: {eq: "0350"}}) { pageInfo { hasNextPage endCursor } '
        "nodes { id_lokalId } } }"
    )
    seen: list[str] = []
    after, pages = None, 0
    while True:
        page = gql(http, urls, query, {"first": 100, "after": after})["data"]["DAR_Adresse"]
        seen += [node["id_lokalId"] for node in page["nodes"]]
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        assert pages < 100
    assert services.registers is not None
    addresses = services.registers.population.addresses
    assert len(seen) == len(set(seen)) == len(addresses)
    assert set(seen) == {a.id for a in addresses}
    assert pages == -(-len(addresses) // 100)


def test_where_filters_by_kommunekode_and_other_fields(http, urls):
    query = (
        "query($k: String) {{ {e}(first: 1000, where: {{kommunekode: {{eq: $k}}}}) "
        "{{ nodes {{ id_lokalId }} }} }}"
    )
    for entity, register in (("BBR_Bygning", "BBR"), ("BBR_Enhed", "BBR"), ("DAR_Adresse", "DAR")):
        ours = gql(http, urls, query.format(e=entity), {"k": "0350"}, register)
        other = gql(http, urls, query.format(e=entity), {"k": "0151"}, register)
        assert ours["data"][entity]["nodes"] and other["data"][entity]["nodes"] == []
    houses = gql(
        http,
        urls,
        '{ BBR_Bygning(first: 1000, where: {and: [{byg021BygningensAnvendelse: {in: ["120"]}}, '
        "{byg026Opfoerelsesaar: {gte: 1960}}]}) { nodes { byg021BygningensAnvendelse "
        "byg026Opfoerelsesaar } } }",
        register="BBR",
    )["data"]["BBR_Bygning"]["nodes"]
    assert houses
    assert all(n["byg021BygningensAnvendelse"] == "120" for n in houses)
    assert all(n["byg026Opfoerelsesaar"] >= 1960 for n in houses)
    streets = gql(
        http, urls, '{ DAR_NavngivenVej(first: 1000, where: {vejnavn: {startsWith: "Skov"}}) '
        "{ nodes { vejnavn administreresAfKommune } } }",
    )["data"]["DAR_NavngivenVej"]["nodes"]  # fmt: skip
    assert all(n["vejnavn"].startswith("Skov") for n in streets)


def test_as_of_registration_shows_the_wrong_door_before_the_correction(http, urls, services):
    assert services.registers is not None
    corrections = services.registers.corrections
    assert len(corrections) >= 3
    query = (
        "query($id: String, $r: DafDateTime, $v: DafDateTime) { DAR_Adresse(first: 10, "
        "registreringstid: $r, virkningstid: $v, where: {id_lokalId: {eq: $id}}) "
        "{ nodes { doerbetegnelse adressebetegnelse registreringFra registreringTil "
        "forretningshaendelse } } }"
    )
    for c in corrections:
        before = format_time(c.at - timedelta(days=1))
        after = format_time(c.at + timedelta(seconds=1))
        virkning = format_time(c.virkning_fra + timedelta(days=30))

        def ask(r: str | None, c=c, virkning=virkning) -> list[dict[str, Any]]:
            answer = gql(http, urls, query, {"id": c.adresse_id, "r": r, "v": virkning})
            return answer["data"]["DAR_Adresse"]["nodes"]

        [old] = ask(before)
        [new] = ask(after)
        [now] = ask(None)
        assert (
            old["doerbetegnelse"] == c.wrong_door
            and f". {c.wrong_door}," in old["adressebetegnelse"]
        )
        assert old["registreringTil"] == format_time(c.at)
        assert new == now and new["doerbetegnelse"] == c.right_door
        assert new["registreringFra"] == format_time(c.at) and new["registreringTil"] is None
        assert new["forretningshaendelse"] == "Rettelse"
        # Before the address was registered at all, the register knew nothing of it.
        assert ask(format_time(c.first_registered - timedelta(days=1))) == []


def test_as_of_virkning_shows_the_provisional_status_of_new_addresses(http, urls, services):
    assert services.registers is not None
    changed = [
        row
        for row in services.registers.dar["DAR_Adresse"]
        if row["status"] == "3" and row["forretningshaendelse"] == "Ændret"
    ]
    assert changed, "some addresses must have become current after a provisional start"
    row = changed[0]
    query = (
        "query($id: String, $v: DafDateTime) { DAR_Adresse(virkningstid: $v, "
        "where: {id_lokalId: {eq: $id}}) { nodes { status virkningFra virkningTil } } }"
    )

    def status_at(moment: str) -> list[str]:
        nodes = gql(http, urls, query, {"id": row["id_lokalId"], "v": moment})
        return [n["status"] for n in nodes["data"]["DAR_Adresse"]["nodes"]]

    assert status_at(format_time(row["virkningFra"] - timedelta(days=1))) == ["2"]
    assert status_at(format_time(row["virkningFra"] + timedelta(seconds=1))) == ["3"]
    # DafDateTime accepts an offset too, as public clients send it.
    assert status_at((row["virkningFra"] + timedelta(days=1)).isoformat()) == ["3"]


def test_api_key_missing_or_wrong_is_refused(http, urls):
    body = {"query": "{ DAR_Adresse(first: 1) { nodes { id_lokalId } } }"}
    assert http.post(f"{urls.datafordeler}/DAR/v1", json=body).status_code == 401
    wrong = http.post(f"{urls.datafordeler}/DAR/v1", params={"apiKey": "nope"}, json=body)
    assert wrong.status_code == 403
    lower = http.post(f"{urls.datafordeler}/DAR/v1", params={"apikey": DEMO_API_KEY}, json=body)
    assert lower.status_code == 200


def test_bad_queries_give_graphql_errors_with_http_200(http, urls):
    unknown = gql(http, urls, "{ DAR_Adresse(first: 1) { nodes { nope } } }")
    assert set(unknown) == {"errors"}
    assert "nope" in unknown["errors"][0]["message"] and unknown["errors"][0]["locations"]

    syntax = gql(http, urls, "{ DAR_Adresse(first: 1) { nodes { id_lokalId }")
    assert set(syntax) == {"errors"}

    bad_time = gql(
        http, urls, '{ DAR_Adresse(first: 1, virkningstid: "yesterday") { nodes { status } } }'
    )
    assert "DafDateTime" in bad_time["errors"][0]["message"]

    too_many = gql(
        http, urls, f"{{ DAR_Adresse(first: {MAX_PAGE_SIZE + 1}) {{ nodes {{ id_lokalId }} }} }}"
    )
    assert too_many["data"] == {"DAR_Adresse": None}
    [error] = too_many["errors"]
    assert error["message"] == "The maximum allowed items per page were exceeded."
    assert error["extensions"]["code"] == "HC0051"
    assert error["extensions"]["maxAllowedItems"] == MAX_PAGE_SIZE == 1000
    assert error["path"] == ["DAR_Adresse"]

    not_graphql = http.post(
        f"{urls.datafordeler}/DAR/v1", params={"apiKey": urls.api_key}, content=b"{not json"
    )
    assert not_graphql.status_code == 400 and "errors" in not_graphql.json()


def test_schema_is_served_as_sdl(http, urls):
    response = http.get(f"{urls.datafordeler}/BBR/v1/schema", params={"apiKey": urls.api_key})
    assert response.status_code == 200
    assert "type BBR_Bygning {" in response.text and "type PageInfo {" in response.text
    assert "DAR_Adresse" not in response.text


def test_registers_match_the_drop_folder_files(tmp_path: Path, services):
    generate(tmp_path, persons=PERSONS, seed=SEED)
    drop = tmp_path / "drop"
    csv_ids = {
        line.split(",", 1)[0]
        for line in (drop / "dar_addresses/dar_adresser.csv").read_text("utf-8").splitlines()[1:]
    }
    units = json.loads((drop / "bbr_dwellings/bbr_enheder.json").read_text("utf-8"))["enheder"]
    assert services.registers is not None
    dar, bbr = services.registers.dar, services.registers.bbr
    assert {r["id_lokalId"] for r in dar["DAR_Adresse"]} == csv_ids
    assert {r["id_lokalId"] for r in bbr["BBR_Enhed"]} == {u["id_lokalId"] for u in units}


def test_registers_are_deterministic_for_a_seed():
    first, again, other = build_registers(300, 7), build_registers(300, 7), build_registers(300, 8)
    assert first.dar == again.dar and first.bbr == again.bbr
    assert first.corrections == again.corrections
    assert first.dar["DAR_Adresse"] != other.dar["DAR_Adresse"]


# --- StatBank-like ---------------------------------------------------------------------------


def expected_population(services: DemoServices) -> dict[tuple[str, str], int]:
    """(district name, quarter) -> persons, re-derived from the people independently."""
    assert services.registers is not None
    counts: Counter[tuple[str, str]] = Counter()
    for person in services.registers.population.persons:
        for quarter in QUARTERS:
            first_day = date(int(quarter[:4]), 3 * int(quarter[-1]) - 2, 1)
            if person.birth > first_day:
                continue
            if person.moved_in <= first_day:
                counts[(person.address.street.district, quarter)] += 1
            elif person.previous_address is not None:
                counts[(person.previous_address.street.district, quarter)] += 1
    return counts


def test_tableinfo_has_the_real_keys(http, urls):
    real_info = json.loads((DST / "STRAF42_tableinfo_da.json").read_text("utf-8-sig"))
    response = http.post(
        f"{urls.statbank}/tableinfo", json={"table": "DEMOFOLK", "format": "JSON", "lang": "da"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/json; charset=utf-8"
    info = response.json()
    assert list(info) == list(real_info)
    assert [list(v) for v in info["variables"]] == [list(real_info["variables"][0])] * 3
    assert [v["id"] for v in info["variables"]] == ["OMRÅDE", "KØN", "Tid"]
    assert info["variables"][-1]["time"] is True
    assert [v["id"] for v in info["variables"][-1]["values"]] == list(QUARTERS)
    # Compact UTF-8 JSON, Danish letters as they are, like the recording.
    assert "OMRÅDE".encode() in response.content and b": " not in response.content
    get = http.get(f"{urls.statbank}/tableinfo", params={"id": "demofolk", "lang": "en"})
    assert get.json()["variables"][0]["text"] == "region"


def test_csv_has_the_real_layout(http, urls):
    real_csv = (DST / "FOLK1A_data_CSV_da_request-not-recorded.csv").read_bytes()
    response = http.post(
        f"{urls.statbank}/data",
        json={
            "table": "DEMOFOLK",
            "format": "CSV",
            "lang": "da",
            "valuePresentation": "Default",
            "variables": [{"code": "OMRÅDE", "values": ["000"]}, {"code": "TID", "values": ["*"]}],
        },
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == "attachment; filename=DEMOFOLK.csv"
    body = response.content
    assert body[:3] == real_csv[:3] == b"\xef\xbb\xbf"
    assert body.endswith(b"\r\n") and body.count(b"\r\n") == body.count(b"\n")
    lines = body.decode("utf-8-sig").split("\r\n")
    assert lines[0] == "OMRÅDE;TID;INDHOLD"  # FOLK1A: OMRÅDE;CIVILSTAND;TID;INDHOLD
    assert lines[1].startswith("Hele kommunen;2024K1;")  # FOLK1A: Hele landet;I alt;2008K1;...
    assert len(lines) == 1 + len(QUARTERS) + 1


def test_jsonstat_has_the_real_structure(http, urls):
    real_set = json.loads((DST / "STRAF42_data_JSONSTAT_en.json").read_text("utf-8-sig"))
    real_novars = json.loads((DST / "STRAF42_data_JSONSTAT_en_novars.json").read_text("utf-8"))
    body = {
        "table": "DEMOFOLK",
        "format": "JSONSTAT",
        "lang": "en",
        "variables": [{"code": "KØN", "values": ["1", "2"]}, {"code": "TID", "values": ["2025K4"]}],
    }
    answer = http.post(f"{urls.statbank}/data", json=body).json()
    assert list(answer) == list(real_set) == ["dataset"]
    dataset, real_dataset = answer["dataset"], real_set["dataset"]
    assert list(dataset) == list(real_dataset)
    assert list(dataset["dimension"]) == ["KØN", "ContentsCode", "Tid", "id", "size", "role"]
    assert list(real_dataset["dimension"])[1:] == ["ContentsCode", "Tid", "id", "size", "role"]
    assert dataset["dimension"]["role"] == real_dataset["dimension"]["role"]
    for name in ("ContentsCode", "Tid"):
        ours, theirs = dataset["dimension"][name], real_dataset["dimension"][name]
        assert list(ours) == list(theirs) and list(ours["category"]) == list(theirs["category"])
    assert dataset["dimension"]["size"] == [2, 1, 1] and len(dataset["value"]) == 2
    assert dataset["label"] == "Population on the first day of the quarter by sex, Indhold and time"
    assert list(dataset["extension"]["px"]) == list(real_dataset["extension"]["px"])

    novars = http.post(f"{urls.statbank}/data", json={"table": "DEMOFOLK", "format": "jsonstat"})
    dims = novars.json()["dataset"]["dimension"]
    assert dims["id"] == real_novars["dataset"]["dimension"]["id"] == ["ContentsCode", "Tid"]
    assert list(dims["Tid"]["category"]["index"]) == [QUARTERS[-1]]  # latest period only


@pytest.mark.parametrize("fmt", ["CSV", "JSONSTAT"])
def test_statbank_connector_reads_the_demo_table(urls, services, fmt):
    districts = [f"{i:02d}" for i in range(1, len(DISTRICTS) + 1)]
    with HttpClient(LOCAL) as client:
        info = table_info(client, "DEMOFOLK", base_url=urls.statbank)
        extract = fetch(
            client,
            "DEMOFOLK",
            {"OMRÅDE": ["000", *districts], "KØN": ["TOT"], "TID": list(QUARTERS)},
            fmt=fmt,  # type: ignore[arg-type]
            info=info,
            base_url=urls.statbank,
        )
    assert [v.id for v in info.variables] == ["OMRÅDE", "KØN", "Tid"]
    assert info.time_variable is not None and info.time_variable.id == "Tid"
    table = extract.table
    assert table.height == (1 + len(districts)) * len(QUARTERS)
    assert {"OMRÅDE", "OMRÅDE_text", "TID", "period_start", "value"} <= set(table.columns)
    expected = expected_population(services)
    names = {code: d.name for code, d in zip(districts, DISTRICTS, strict=True)}
    for quarter in QUARTERS:
        rows = table.filter(table["TID"] == quarter)
        by_area = dict(zip(rows["OMRÅDE"], rows["value"], strict=True))
        for code in districts:
            assert by_area[code] == expected[(names[code], quarter)]
        total = sum(expected[(d.name, quarter)] for d in DISTRICTS)
        assert by_area["000"] == total == sum(by_area[c] for c in districts)
    assert table.filter(table["TID"] == "2024K1")["period_start"][0] == date(2024, 1, 1)


def test_statbank_errors_have_the_service_shape(http, urls):
    cases = [
        ({"table": "NOSUCH", "format": "CSV"}, "TABLE-NOTFOUND"),
        ({"table": "DEMOFOLK", "variables": [{"code": "ALDER", "values": ["*"]}]},
         "VARIABLE-NOTFOUND"),
        ({"table": "DEMOFOLK", "variables": [{"code": "TID", "values": ["2019K1"]}]},
         "EXTRACT-NOTFOUND"),
        ({"table": "DEMOFOLK", "format": "XLSX"}, "FORMAT-NOTSUPPORTED"),
    ]  # fmt: skip
    for body, code in cases:
        response = http.post(f"{urls.statbank}/data", json=body)
        assert response.status_code == 400
        payload = response.json()
        assert list(payload) == ["errorTypeCode", "message"] and payload["errorTypeCode"] == code
    with HttpClient(LOCAL) as client, pytest.raises(StatbankError) as caught:
        table_info(client, "NOSUCH", base_url=urls.statbank)
    assert caught.value.status == 400 and caught.value.code == "TABLE-NOTFOUND"
    assert "NOSUCH" in caught.value.message
