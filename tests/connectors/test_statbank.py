"""StatBank connector against a fake StatBank on 127.0.0.1 serving the real recorded answers.

The STRAF42 bodies and the requests that produced them come from VCR cassettes of the live
API (shared/fixtures/real/dst); the server answers only when the POST body the connector
sends equals the recorded one (modulo key order). A synthetic multi-cell answer (FOLK1A-like,
Danish letters in codes, a `..` marker, a decimal comma) covers what the short real answers
do not; it is marked as such below.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import polars as pl
import pytest
import yaml
from polars.testing import assert_frame_equal

from connectors.formats.errors import FormatError
from connectors.http import HttpClient
from connectors.statbank import (
    StatbankError,
    TableInfo,
    Value,
    Variable,
    data_request,
    fetch,
    parse_csv,
    parse_jsonstat,
    parse_period,
    table_info,
)
from tests.connectors.conftest import FAST, REAL
from tests.connectors.fakeserver import FakeServer, FaultSchedule, Recorder, Reply, Request

DST = REAL / "dst"
CASSETTES = DST / "vcr_cassettes_original"
STRAF42_VARS = {"HERKOMST1": ["00"], "TID": ["2023"]}


def canonical(body: Any) -> str:
    return json.dumps(body, sort_keys=True, ensure_ascii=False)


class CassetteLoader(yaml.SafeLoader):
    """VCR writes binary bodies as `!binary` (base64)."""


CassetteLoader.add_constructor(
    "!binary", lambda loader, node: base64.b64decode(loader.construct_scalar(node))
)


def recorded_request(cassette: str) -> dict[str, Any]:
    text = (CASSETTES / cassette).read_text("utf-8")
    interaction = yaml.load(text, Loader=CassetteLoader)["http_interactions"][0]
    return json.loads(interaction["request"]["body"]["string"])


# -- a synthetic answer (not recorded): 2 areas x 2 sexes x 3 quarters, one cell confidential
FOLK_VARS = {"OMRÅDE": ["000", "101"], "KØN": ["1", "2"], "TID": ["2024K1", "2024K2", "2024K3"]}
FOLK_LABELS = {
    "OMRÅDE": {"000": "Hele landet", "101": "København"},
    "KØN": {"1": "Mænd", "2": "Kvinder"},
}
FOLK_VALUES: list[float | None] = [1.5, 2, 3, 4, 5, 6, 7, None, 9, 10, 11, 12]
FOLK_INFO = TableInfo(
    id="FOLK1A",
    text="Befolkningen den 1. i kvartalet",
    unit="Antal",
    updated=None,
    variables=(
        *(
            Variable(code, code.lower(), tuple(Value(k, v) for k, v in labels.items()))
            for code, labels in FOLK_LABELS.items()
        ),
        Variable("Tid", "tid", tuple(Value(t, t) for t in FOLK_VARS["TID"]), time=True),
    ),
)


def folk_cells() -> Iterator[tuple[str, str, str, float | None]]:
    values = iter(FOLK_VALUES)
    for area in FOLK_VARS["OMRÅDE"]:
        for sex in FOLK_VARS["KØN"]:
            for period in FOLK_VARS["TID"]:
                yield area, sex, period, next(values)


def folk_csv() -> bytes:
    lines = ["OMRÅDE;KØN;TID;INDHOLD"]
    for area, sex, period, value in folk_cells():
        cell = ".." if value is None else f"{value:g}".replace(".", ",")
        lines.append(f"{FOLK_LABELS['OMRÅDE'][area]};{FOLK_LABELS['KØN'][sex]};{period};{cell}")
    return "\ufeff".encode() + "\r\n".join(lines).encode() + b"\r\n"


def folk_jsonstat() -> bytes:
    def dim(code: str, label: str, codes: list[str], labels: dict[str, str]) -> dict[str, Any]:
        index = {c: i for i, c in enumerate(codes)}
        return {"label": label, "category": {"index": index, "label": labels}}

    tid = FOLK_VARS["TID"]
    dimension = {
        "OMRÅDE": dim("OMRÅDE", "område", FOLK_VARS["OMRÅDE"], FOLK_LABELS["OMRÅDE"]),
        "KØN": dim("KØN", "køn", FOLK_VARS["KØN"], FOLK_LABELS["KØN"]),
        "ContentsCode": dim("ContentsCode", "Indhold", ["FOLK1A"], {"FOLK1A": "Befolkning"}),
        "Tid": dim("Tid", "tid", tid, {t: t for t in tid}),
        "id": ["OMRÅDE", "KØN", "ContentsCode", "Tid"],
        "size": [2, 2, 1, 3],
        "role": {"metric": ["ContentsCode"], "time": ["Tid"]},
    }
    dataset = {"dimension": dimension, "value": FOLK_VALUES, "status": {"7": ".."}}
    return json.dumps({"dataset": dataset}, ensure_ascii=False).encode()


class FakeStatbank:
    """POST /v1/tableinfo and /v1/data answering recorded bodies for recorded requests."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.bodies: list[bytes] = []
        self.data: dict[str, tuple[str, bytes]] = {
            canonical(recorded_request("data_straf42_json.yml")): (
                "text/json; charset=utf-8",
                (DST / "STRAF42_data_JSONSTAT_en.json").read_bytes(),
            ),
            canonical(recorded_request("data_straf42_csv.yml")): (
                "text/csv; charset=utf-8",
                (DST / "STRAF42_data_CSV_en.csv").read_bytes(),
            ),
            canonical(data_request("FOLK1A", FOLK_VARS, fmt="CSV")): (
                "text/csv; charset=utf-8",
                folk_csv(),
            ),
            canonical(data_request("FOLK1A", FOLK_VARS, fmt="JSONSTAT")): (
                "text/json; charset=utf-8",
                folk_jsonstat(),
            ),
        }
        server.route("POST", "/v1/tableinfo")(self.tableinfo)
        server.route("POST", "/v1/data")(self.data_route)

    @property
    def base_url(self) -> str:
        return f"{self.server.url}/v1"

    def tableinfo(self, request: Request) -> Reply:
        self.bodies.append(request.body)
        body = request.json()
        lang = body.get("lang")
        if body.get("table") == "STRAF42" and body.get("format") == "JSON" and lang in ("da", "en"):
            payload = (DST / f"STRAF42_tableinfo_{lang}.json").read_bytes()
            return Reply(200, payload, {"Content-Type": "text/json; charset=utf-8"})
        return self.not_found(body.get("table"))

    def data_route(self, request: Request) -> Reply:
        self.bodies.append(request.body)
        body = request.json()
        answer = self.data.get(canonical(body))
        if answer is None:
            return self.not_found(body.get("table"))
        return Reply(200, answer[1], {"Content-Type": answer[0]})

    @staticmethod
    def not_found(table: str | None) -> Reply:
        # Not recorded: the cassettes hold no error. A plausible StatBank 400 body.
        return Reply.json(
            {"errorTypeCode": "TABLE_NOT_FOUND", "message": f"Tabellen '{table}' findes ikke."},
            status=400,
        )


@pytest.fixture
def statbank() -> Iterator[FakeStatbank]:
    with FakeServer() as server:
        yield FakeStatbank(server)
        assert not server.errors, server.errors[0]


def statbank_with(faults: FaultSchedule) -> tuple[FakeServer, FakeStatbank]:
    server = FakeServer(faults=faults).__enter__()
    return server, FakeStatbank(server)


@pytest.fixture
def client() -> Iterator[HttpClient]:
    with HttpClient(FAST, sleep=Recorder()) as c:
        yield c


# -- tableinfo


@pytest.mark.parametrize("lang", ["da", "en"])
def test_table_info_parses_both_languages(statbank, client, lang):
    info = table_info(client, "STRAF42", lang, base_url=statbank.base_url)

    assert json.loads(statbank.bodies[0]) == {"table": "STRAF42", "format": "JSON", "lang": lang}
    assert info.id == "STRAF42"
    assert info.raw == (DST / f"STRAF42_tableinfo_{lang}.json").read_bytes()
    assert [v.id for v in info.variables] == [
        "HERKOMST1",
        "OVERTRÆD",
        "AFGØRELSE",
        "ALDER",
        "KØN",
        "Tid",
    ]
    assert info.time_variable is not None and info.time_variable.id == "Tid"
    assert info.variable("TID") is info.time_variable
    assert [len(v.values) for v in info.variables] == [7, 97, 47, 19, 4, 30]
    assert info.updated is not None and info.updated.date() == date(2025, 3, 25)
    assert info.suppressed_value == "0"
    herkomst = info.variable("HERKOMST1")
    assert not herkomst.time and herkomst.elimination
    if lang == "da":
        assert (info.text, info.unit) == ("Strafferetlige afgørelser", "Antal")
        assert herkomst.label_of("81") == "Asylansøger"
        assert info.variable("KØN").label_of("M") == "Mænd"
    else:
        assert (info.text, info.unit) == ("Decisions, total", "Number")
        assert herkomst.label_of("00") == "Total"


# -- data


@pytest.mark.parametrize(
    ("fmt", "cassette", "media_type"),
    [
        ("JSONSTAT", "data_straf42_json.yml", "text/json"),
        ("CSV", "data_straf42_csv.yml", "text/csv"),
    ],
)
def test_fetch_straf42_sends_the_recorded_body(statbank, client, fmt, cassette, media_type):
    extract = fetch(client, "STRAF42", STRAF42_VARS, lang="en", fmt=fmt, base_url=statbank.base_url)

    assert json.loads(statbank.bodies[0]) == recorded_request(cassette)
    assert extract.request == recorded_request(cassette)
    assert extract.media_type == media_type
    name = "STRAF42_data_JSONSTAT_en.json" if fmt == "JSONSTAT" else "STRAF42_data_CSV_en.csv"
    assert extract.raw == (DST / name).read_bytes()
    expected = pl.DataFrame(
        {
            "HERKOMST1": ["00"],
            "HERKOMST1_text": ["Total"],
            "TID": ["2023"],
            "TID_text": ["2023"],
            "period_start": [date(2023, 1, 1)],
            "period_end": [date(2023, 12, 31)],
            "value": [233454.0],
            "status": pl.Series([None], dtype=pl.String),
        }
    )
    assert_frame_equal(extract.table, expected)


def test_straf42_csv_and_jsonstat_give_the_same_long_table(statbank, client):
    tables = [
        fetch(client, "STRAF42", STRAF42_VARS, lang="en", fmt=f, base_url=statbank.base_url).table
        for f in ("CSV", "JSONSTAT")
    ]
    assert_frame_equal(tables[0], tables[1])


def test_jsonstat_without_variables_is_the_latest_total():
    table = parse_jsonstat((DST / "STRAF42_data_JSONSTAT_en_novars.json").read_bytes(), table="S")
    assert table.columns == ["Tid", "Tid_text", "period_start", "period_end", "value", "status"]
    assert table.row(0) == ("2024", "2024", date(2024, 1, 1), date(2024, 12, 31), 227774.0, None)


def test_jsonstat_without_role_metadata_still_dates_the_time_variable():
    document = json.loads((DST / "STRAF42_data_JSONSTAT_en.json").read_bytes())
    del document["dataset"]["dimension"]["role"]
    raw = json.dumps(document).encode()
    table = parse_jsonstat(raw, table="STRAF42", variables=STRAF42_VARS)
    assert table.select("TID", "period_start", "period_end").row(0) == (
        "2023",
        date(2023, 1, 1),
        date(2023, 12, 31),
    )


@pytest.mark.parametrize("fmt", ["JSONSTAT", "CSV"])
def test_fetch_many_cells_gives_one_row_per_cell(statbank, client, fmt):
    extract = fetch(
        client, "FOLK1A", FOLK_VARS, fmt=fmt, info=FOLK_INFO, base_url=statbank.base_url
    )
    table = extract.table

    assert table.height == 2 * 2 * 3  # the product of the selected values' counts
    assert table.columns == [
        "OMRÅDE",
        "OMRÅDE_text",
        "KØN",
        "KØN_text",
        "TID",
        "TID_text",
        "period_start",
        "period_end",
        "value",
        "status",
    ]
    assert table.select("OMRÅDE", "KØN", "TID").rows() == [c[:3] for c in folk_cells()]
    assert table["value"].to_list() == [None if v is None else float(v) for v in FOLK_VALUES]
    assert table["value"][0] == 1.5  # CSV: a decimal comma
    marked = table.filter(pl.col("status").is_not_null())
    assert marked.select("OMRÅDE", "KØN", "TID", "value", "status").rows() == [
        ("101", "1", "2024K2", None, "..")
    ]
    assert table.row(5, named=True)["OMRÅDE_text"] == "Hele landet"
    assert table.row(6, named=True)["OMRÅDE_text"] == "København"
    assert table["period_start"].unique().sort().to_list() == [
        date(2024, 1, 1),
        date(2024, 4, 1),
        date(2024, 7, 1),
    ]
    assert table["period_end"].unique().sort().to_list() == [
        date(2024, 3, 31),
        date(2024, 6, 30),
        date(2024, 9, 30),
    ]


def folk_jsonstat_with(**changes: Any) -> bytes:
    """The synthetic FOLK1A JSON-stat answer with some dataset keys replaced."""
    document = json.loads(folk_jsonstat())
    document["dataset"].update(changes)
    return json.dumps(document, ensure_ascii=False).encode()


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        (FOLK_VALUES[:-1], "value array has 11 entries for 12 cells"),
        ([*FOLK_VALUES, 13], "value array has 13 entries for 12 cells"),
        ({"0": 1, "12": 2}, "value key '12' is outside 0..11"),
    ],
    ids=["one-short", "one-extra", "sparse-outside"],
)
def test_jsonstat_answer_with_other_cells_than_its_size_is_refused(
    statbank, client, values, problem
):
    # Padding a short array with nulls (or dropping extra values) would misplace or lose
    # cells without a word; the sizes say how many cells the answer must hold.
    request = canonical(data_request("FOLK1A", FOLK_VARS, fmt="JSONSTAT"))
    statbank.data[request] = ("text/json; charset=utf-8", folk_jsonstat_with(value=values))
    with pytest.raises(FormatError, match=f"StatBank FOLK1A JSONSTAT: {problem}"):
        fetch(client, "FOLK1A", FOLK_VARS, base_url=statbank.base_url)


def test_jsonstat_one_entry_status_array_applies_to_every_cell():
    raw = folk_jsonstat_with(value=[None] * 12, status=[".."])
    table = parse_jsonstat(raw, table="FOLK1A", variables=FOLK_VARS)
    assert table["status"].to_list() == [".."] * 12
    assert table["value"].null_count() == 12


def test_jsonstat_value_marked_missing_or_confidential_is_null_as_in_pxweb():
    # Some writers send 0 beside a ".." status; summing it as a count would be wrong, and
    # Statistics Norway's JSON-stat (connectors.jsonstat) already nulls such cells.
    raw = folk_jsonstat_with(value=list(range(12)), status={"3": "..", "4": ":", "5": "e"})
    table = parse_jsonstat(raw, table="FOLK1A", variables=FOLK_VARS)
    assert table["status"].to_list()[3:6] == ["..", ":", "e"]
    assert table["value"].to_list()[2:6] == [2.0, None, None, 5.0]  # "e" (estimate) keeps it


@pytest.mark.parametrize("with_info", [False, True], ids=["request-only", "tableinfo"])
def test_english_csv_quarter_labels_become_the_quarter_codes(statbank, client, with_info):
    # In English StatBank labels a quarter `2024Q1` (its table list says firstPeriod
    # "2007Q1"), while the code, in requests and in JSON-stat, stays `2024K1`.
    english = folk_csv()
    for code in FOLK_VARS["TID"]:
        english = english.replace(code.encode(), code.replace("K", "Q").encode())
    request = canonical(data_request("FOLK1A", FOLK_VARS, lang="en", fmt="CSV"))
    statbank.data[request] = ("text/csv; charset=utf-8", english)
    quarters = (Value(t, t.replace("K", "Q")) for t in FOLK_VARS["TID"])
    time = Variable("Tid", "time", tuple(quarters), time=True)
    info = TableInfo("FOLK1A", "", None, None, (*FOLK_INFO.variables[:2], time), lang="en")

    csv_table = fetch(
        client,
        "FOLK1A",
        FOLK_VARS,
        lang="en",
        fmt="CSV",
        info=info if with_info else FOLK_INFO,
        base_url=statbank.base_url,
    ).table
    json_table = fetch(client, "FOLK1A", FOLK_VARS, base_url=statbank.base_url).table

    assert csv_table["TID"].to_list() == json_table["TID"].to_list()
    assert csv_table["TID_text"].unique().sort().to_list() == ["2024Q1", "2024Q2", "2024Q3"]
    assert_frame_equal(
        csv_table.select("period_start", "period_end", "value"),
        json_table.select("period_start", "period_end", "value"),
    )


def test_danish_letters_travel_as_utf8_json(statbank, client):
    fetch(client, "FOLK1A", FOLK_VARS, fmt="JSONSTAT", base_url=statbank.base_url)
    sent = statbank.bodies[0]
    assert "OMRÅDE".encode() in sent and "KØN".encode() in sent  # not \\u-escaped
    assert json.loads(sent.decode("utf-8"))["variables"][0] == {
        "code": "OMRÅDE",
        "values": ["000", "101"],
    }


def test_jsonstat_and_csv_agree_on_the_synthetic_table(statbank, client):
    tables = [
        fetch(client, "FOLK1A", FOLK_VARS, fmt=f, info=FOLK_INFO, base_url=statbank.base_url).table
        for f in ("CSV", "JSONSTAT")
    ]
    assert_frame_equal(tables[0], tables[1])


def test_csv_labels_without_info_are_a_clear_error():
    with pytest.raises(FormatError, match=r"OMRÅDE code of label 'Hele landet'.*info="):
        parse_csv(folk_csv(), table="FOLK1A", variables=FOLK_VARS)


def test_real_folk1a_csv_danish_headers_and_quarters():
    raw = (DST / "FOLK1A_data_CSV_da_request-not-recorded.csv").read_bytes()
    variables = {"OMRÅDE": ["000"], "CIVILSTAND": ["TOT"], "TID": ["*"]}
    table = parse_csv(raw, table="FOLK1A", variables=variables)

    assert table.height == 13 * 4  # 2008K1 - 2020K4
    assert table.columns[:4] == ["OMRÅDE", "OMRÅDE_text", "CIVILSTAND", "CIVILSTAND_text"]
    assert set(table["OMRÅDE_text"]) == {"Hele landet"}
    assert table.row(0)[4:8] == ("2008K1", "2008K1", date(2008, 1, 1), date(2008, 3, 31))
    assert table.row(-1)[4:8] == ("2020K4", "2020K4", date(2020, 10, 1), date(2020, 12, 31))
    assert table["value"][0] == 5475791.0
    assert table["status"].null_count() == table.height


def test_500_then_200_gives_the_same_table(statbank, client):
    clean = fetch(client, "STRAF42", STRAF42_VARS, lang="en", base_url=statbank.base_url)
    server, faulty = statbank_with(FaultSchedule({0: "500"}))
    try:
        with HttpClient(FAST, sleep=Recorder()) as retrying:
            again = fetch(retrying, "STRAF42", STRAF42_VARS, lang="en", base_url=faulty.base_url)
        assert server.count("/v1/data") == 2
        assert server.faults_injected() == ["500"]
    finally:
        server.__exit__(None, None, None)
    assert not server.errors
    assert_frame_equal(clean.table, again.table)
    assert again.raw == clean.raw


def test_unknown_table_passes_the_service_message_on(statbank, client):
    with pytest.raises(StatbankError, match="Tabellen 'NOPE' findes ikke") as caught:
        fetch(client, "NOPE", {"TID": ["2023"]}, base_url=statbank.base_url)
    assert caught.value.status == 400
    assert caught.value.code == "TABLE_NOT_FOUND"
    assert "data for NOPE" in str(caught.value)
    with pytest.raises(StatbankError, match="tableinfo NOPE: Tabellen 'NOPE' findes ikke"):
        table_info(client, "NOPE", base_url=statbank.base_url)
    assert statbank.server.count() == 2  # a 400 is not retried


def test_fmt_is_checked():
    with pytest.raises(ValueError, match="JSONSTAT"):
        data_request("STRAF42", {}, fmt="XLSX")  # type: ignore[arg-type]


# -- time codes


@pytest.mark.parametrize(
    ("code", "start", "end"),
    [
        ("2023", date(2023, 1, 1), date(2023, 12, 31)),
        ("2023H1", date(2023, 1, 1), date(2023, 6, 30)),
        ("2023H2", date(2023, 7, 1), date(2023, 12, 31)),
        ("2023K1", date(2023, 1, 1), date(2023, 3, 31)),
        ("2024K1", date(2024, 1, 1), date(2024, 3, 31)),
        ("2023K2", date(2023, 4, 1), date(2023, 6, 30)),
        ("2023K3", date(2023, 7, 1), date(2023, 9, 30)),
        ("2023K4", date(2023, 10, 1), date(2023, 12, 31)),
        ("2023M01", date(2023, 1, 1), date(2023, 1, 31)),
        ("2023M02", date(2023, 2, 1), date(2023, 2, 28)),
        ("2024M02", date(2024, 2, 1), date(2024, 2, 29)),  # leap year
        ("2000M02", date(2000, 2, 1), date(2000, 2, 29)),  # divisible by 400
        ("1900M02", date(1900, 2, 1), date(1900, 2, 28)),  # divisible by 100
        ("2023M04", date(2023, 4, 1), date(2023, 4, 30)),
        ("2023M12", date(2023, 12, 1), date(2023, 12, 31)),
        # three-year cohorts (RECIDIV1-12 in the real table list: 2007:2009 to 2020:2022)
        ("2007:2009", date(2007, 1, 1), date(2009, 12, 31)),
        ("2020:2020", date(2020, 1, 1), date(2020, 12, 31)),
    ],
)
def test_parse_period(code, start, end):
    assert parse_period(code) == (start, end)


@pytest.mark.parametrize(
    "code",
    ["2023K5", "2023K0", "2023M13", "2023M1", "2023H3", "2023U01", "23", "2023Q1", "", "2009:2007"],
)
def test_unknown_time_codes_are_named(code):
    with pytest.raises(FormatError, match=f"unknown time code {code!r}"):
        parse_period(code)


def test_unknown_time_code_in_data_names_the_code():
    raw = "\ufeffHERKOMST1;TID;INDHOLD\r\nTotal;2023U07;1\r\n".encode()
    with pytest.raises(FormatError, match="StatBank STRAF42 CSV: unknown time code '2023U07'"):
        parse_csv(raw, table="STRAF42", variables={"HERKOMST1": ["00"], "TID": ["2023U07"]})
