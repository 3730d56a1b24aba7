"""A StatBank-like service (``/v1/tableinfo``, ``/v1/data``) with one demo table, ``DEMOFOLK``.

``DEMOFOLK`` — the Demo Kommune's population on the first day of each quarter, by district
(``OMRÅDE``: ``000`` all districts, ``01``..``06`` in ``places.DISTRICTS`` order), sex
(``KØN``: ``TOT``, ``1`` men, ``2`` women) and quarter (``Tid``: ``2024K1``..``2025K4``).
Counted from the generator's persons: someone counts in a quarter when born by its first
day and living in the kommune then — at their address if they had moved in by then, at
their previous address (always in the kommune) if they had one, else not yet.

The answers copy the real service's shapes (``shared/fixtures/real/dst``, STRAF42 and
FOLK1A): tableinfo is compact UTF-8 JSON with the same keys; CSV is a UTF-8 BOM,
``;``-separated, CRLF, header of upper-cased codes plus ``INDHOLD`` and *labels* in the
cells (default value presentation); JSON-stat is 1.x ``{"dataset": ...}`` with the extra
one-value ``ContentsCode`` dimension before ``Tid`` and ``role``/``id``/``size`` inside
``dimension``. As in the recordings the time variable is ``Tid`` in tableinfo and
JSON-stat and ``TID`` in CSV; codes in requests match case-insensitively.

Selection: each variable's ``values`` are codes or ``*`` (all). A variable left out is
eliminated to its total when it can be (``OMRÅDE``, ``KØN``) and is then absent from the
answer; a left-out time variable gives the latest period only (as the STRAF42 no-variables
recording shows).

Errors are HTTP 400 with ``{"errorTypeCode": ..., "message": ...}``. No error answer is
recorded in ``shared/fixtures/real/dst`` (its PROVENANCE lists only successful answers), so
every status and code below is a **guess**, each chosen here:

- the 400 status and the two keys: from public client code for the live API (not a fixture);
- ``EXTRACT-NOTFOUND``: a value code the table does not have (public client code shows the
  live API answering it, e.g. "Can't find value: 999 (OMRÅDE)");
- ``TABLE-NOTFOUND``: an unknown table (public client code suggests the live API answers
  ``EXTRACT-NOTFOUND`` here too; kept apart so tests can tell the cases);
- ``VARIABLE-NOTFOUND``: a variable the table does not have;
- ``FORMAT-NOTSUPPORTED``: a format other than CSV/JSONSTAT (JSON for tableinfo);
- ``PARAMETER-INVALID``: a body that is not a JSON object, a missing table, an unknown
  language, a malformed variable (public client code suggests ``REQUEST-MISSING`` for a
  missing table or format).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple

from ..people import Population
from ..places import DISTRICTS

TABLE = "DEMOFOLK"
QUARTERS: tuple[str, ...] = tuple(f"{y}K{q}" for y in (2024, 2025) for q in range(1, 5))
LANGS = ("da", "en")
JSON_TYPE = "text/json; charset=utf-8"
CSV_TYPE = "text/csv; charset=utf-8"


class Answer(NamedTuple):
    status: int
    content_type: str
    body: bytes
    headers: Mapping[str, str] = {}


class StatbankRequestError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class StatVariable:
    id: str
    text: Mapping[str, str]  # lang -> text
    values: tuple[tuple[str, Mapping[str, str]], ...]  # (code, lang -> label)
    elimination: bool = True
    time: bool = False
    total: str | None = None  # the code an eliminated variable collapses to

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(code for code, _ in self.values)

    def label(self, code: str, lang: str) -> str:
        return next(labels[lang] for c, labels in self.values if c == code)


@dataclass(frozen=True)
class StatTable:
    id: str
    text: Mapping[str, str]
    description: Mapping[str, str]
    unit: Mapping[str, str]
    updated_local: str  # as tableinfo shows it (Danish local time, no zone)
    updated_utc: str  # as JSON-stat shows it
    variables: tuple[StatVariable, ...]
    cells: Mapping[tuple[str, ...], int]  # one code per variable, in variable order

    def variable(self, code: str) -> StatVariable:
        for variable in self.variables:
            if variable.id.casefold() == code.casefold():
                return variable
        raise StatbankRequestError(
            "VARIABLE-NOTFOUND",
            f'Variablen "{code}" findes ikke i tabellen {self.id} '
            f"(den har {', '.join(v.id for v in self.variables)}).",
        )


def _quarter_start(code: str) -> date:
    return date(int(code[:4]), 3 * (int(code[5]) - 1) + 1, 1)


def demofolk(population: Population) -> StatTable:
    """The DEMOFOLK table for a generated population (see the module doc)."""
    codes = {d.name: f"{i:02d}" for i, d in enumerate(DISTRICTS, start=1)}
    counts: Counter[tuple[str, str, str]] = Counter()
    starts = [(q, _quarter_start(q)) for q in QUARTERS]
    for person in population.persons:
        sex = "2" if person.female else "1"
        for quarter, start in starts:
            if person.birth > start:
                continue
            if person.moved_in <= start:
                home = person.address
            elif person.previous_address is not None:
                home = person.previous_address
            else:
                continue  # moved in from outside the kommune later
            counts[(codes[home.street.district], sex, quarter)] += 1
    cells: dict[tuple[str, ...], int] = {}
    for area in ("000", *codes.values()):
        for sex in ("TOT", "1", "2"):
            for quarter in QUARTERS:
                cells[(area, sex, quarter)] = sum(
                    n
                    for (a, s, q), n in counts.items()
                    if q == quarter and area in ("000", a) and sex in ("TOT", s)
                )
    omraade = StatVariable(
        "OMRÅDE",
        {"da": "område", "en": "region"},
        (
            ("000", {"da": "Hele kommunen", "en": "All districts"}),
            *((code, {"da": name, "en": name}) for name, code in codes.items()),
        ),
        total="000",
    )
    koen = StatVariable(
        "KØN",
        {"da": "køn", "en": "sex"},
        (
            ("TOT", {"da": "I alt", "en": "Total"}),
            ("1", {"da": "Mænd", "en": "Men"}),
            ("2", {"da": "Kvinder", "en": "Women"}),
        ),
        total="TOT",
    )
    tid = StatVariable(
        "Tid",
        {"da": "tid", "en": "time"},
        tuple((q, {"da": q, "en": q}) for q in QUARTERS),
        elimination=False,
        time=True,
    )
    return StatTable(
        id=TABLE,
        text={
            "da": "Befolkningen den 1. i kvartalet",
            "en": "Population on the first day of the quarter",
        },
        description={
            "da": "Befolkningen den 1. i kvartalet efter område, køn og tid",
            "en": "Population on the first day of the quarter by region, sex and time",
        },
        unit={"da": "Antal", "en": "Number"},
        updated_local="2026-11-01T08:00:00",
        updated_utc="2026-11-01T07:00:00Z",
        variables=(omraade, koen, tid),
        cells=cells,
    )


def _json(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def error_answer(code: str, message: str) -> Answer:
    return Answer(400, JSON_TYPE, _json({"errorTypeCode": code, "message": message}))


class StatbankService:
    """Answers StatBank requests given as parsed JSON bodies (or GET parameters)."""

    def __init__(self, population: Population) -> None:
        table = demofolk(population)
        self.tables = {table.id: table}

    def handle(self, endpoint: str, request: Mapping[str, Any]) -> Answer:
        try:
            if endpoint == "tableinfo":
                return self._tableinfo(request)
            if endpoint == "data":
                return self._data(request)
            raise StatbankRequestError("PARAMETER-INVALID", f"Ukendt funktion: {endpoint}")
        except StatbankRequestError as exc:
            return error_answer(exc.code, exc.message)

    def _table(self, request: Mapping[str, Any]) -> tuple[StatTable, str]:
        name = request.get("table") or request.get("id")
        lang = str(request.get("lang") or "da").lower()
        if lang not in LANGS:
            raise StatbankRequestError("PARAMETER-INVALID", f"Sproget {lang!r} findes ikke.")
        if not isinstance(name, str) or not name:
            raise StatbankRequestError("PARAMETER-INVALID", "Der er ikke angivet en tabel.")
        table = self.tables.get(name.upper())
        if table is None:
            message = (
                f'The table "{name}" was not found.'
                if lang == "en"
                else f'Tabellen "{name}" blev ikke fundet.'
            )
            raise StatbankRequestError("TABLE-NOTFOUND", message)
        return table, lang

    def _tableinfo(self, request: Mapping[str, Any]) -> Answer:
        table, lang = self._table(request)
        fmt = str(request.get("format") or "JSON").upper()
        if fmt != "JSON":
            raise StatbankRequestError("FORMAT-NOTSUPPORTED", f"Formatet {fmt} understøttes ikke.")
        info = {
            "id": table.id,
            "text": table.text[lang],
            "description": table.description[lang],
            "unit": table.unit[lang],
            "suppressedDataValue": "0",
            "updated": table.updated_local,
            "active": True,
            "contacts": [
                {
                    "name": "Demo Kommune, Analyse",
                    "phone": "+4570000350",
                    "mail": "analyse@demo.invalid",
                }
            ],
            "documentation": {
                "id": "00000000-0000-4000-8000-000000000350",
                "url": "https://demo.invalid/dokumentation/DEMOFOLK",
            },
            "footnote": {
                "text": "Syntetiske data fra Demo Kommune (kommunelake)."
                if lang == "da"
                else "Synthetic data from the Demo Kommune (kommunelake).",
                "mandatory": False,
            },
            "variables": [
                {
                    "id": v.id,
                    "text": v.text[lang],
                    "elimination": v.elimination,
                    "time": v.time,
                    "values": [{"id": code, "text": labels[lang]} for code, labels in v.values],
                }
                for v in table.variables
            ],
        }
        return Answer(200, JSON_TYPE, _json(info))

    def _selection(
        self, table: StatTable, requested: Any
    ) -> list[tuple[StatVariable, tuple[str, ...], bool]]:
        """(variable, chosen codes, shown in the answer) per table variable."""
        if requested is None:
            requested = []
        if not isinstance(requested, list):
            raise StatbankRequestError("PARAMETER-INVALID", "variables skal være en liste.")
        chosen: dict[str, tuple[str, ...]] = {}
        for item in requested:
            if not isinstance(item, Mapping) or not isinstance(item.get("code"), str):
                raise StatbankRequestError("PARAMETER-INVALID", f"Ugyldig variabel: {item!r}")
            variable = table.variable(item["code"])
            values = item.get("values") or []
            if isinstance(values, str):
                values = [values]
            if "*" in values:
                codes = variable.codes
            else:
                unknown = [str(v) for v in values if str(v) not in variable.codes]
                if unknown or not values:
                    raise StatbankRequestError(
                        "EXTRACT-NOTFOUND",
                        f"Værdien {', '.join(unknown) or '(ingen)'} findes ikke "
                        f"for variablen {variable.id} i tabellen {table.id}.",
                    )
                codes = tuple(c for c in variable.codes if c in {str(v) for v in values})
            chosen[variable.id] = codes
        selection = []
        for variable in table.variables:
            if variable.id in chosen:
                selection.append((variable, chosen[variable.id], True))
            elif variable.time:
                selection.append((variable, variable.codes[-1:], True))
            elif variable.elimination and variable.total is not None:
                selection.append((variable, (variable.total,), False))
            else:
                raise StatbankRequestError(
                    "PARAMETER-INVALID", f"Variablen {variable.id} skal vælges."
                )
        return selection

    def _data(self, request: Mapping[str, Any]) -> Answer:
        table, lang = self._table(request)
        fmt = str(request.get("format") or "JSONSTAT").upper()
        if fmt not in ("CSV", "JSONSTAT"):
            raise StatbankRequestError(
                "FORMAT-NOTSUPPORTED",
                f"Formatet {fmt} understøttes ikke (brug CSV eller JSONSTAT).",
            )
        selection = self._selection(table, request.get("variables"))
        cells = [
            (combination, table.cells[combination])
            for combination in itertools.product(*(codes for _, codes, _ in selection))
        ]
        if fmt == "CSV":
            presentation = str(request.get("valuePresentation") or "Default")
            return self._csv(table, lang, selection, cells, presentation)
        return self._jsonstat(table, lang, selection, cells)

    @staticmethod
    def _csv(
        table: StatTable,
        lang: str,
        selection: Sequence[tuple[StatVariable, tuple[str, ...], bool]],
        cells: Sequence[tuple[tuple[str, ...], int]],
        presentation: str,
    ) -> Answer:
        shown = [i for i, (_, _, show) in enumerate(selection) if show]

        def cell(variable: StatVariable, code: str) -> str:
            label = variable.label(code, lang)
            if presentation.casefold() == "code":
                return code
            if presentation.casefold() == "codeandvalue":
                return f"{code} {label}"
            return label

        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
        writer.writerow([*(selection[i][0].id.upper() for i in shown), "INDHOLD"])
        for combination, value in cells:
            writer.writerow([*(cell(selection[i][0], combination[i]) for i in shown), value])
        body = ("\ufeff" + buffer.getvalue()).encode("utf-8")
        headers = {"Content-Disposition": f"attachment; filename={table.id}.csv"}
        return Answer(200, CSV_TYPE, body, headers)

    @staticmethod
    def _jsonstat(
        table: StatTable,
        lang: str,
        selection: Sequence[tuple[StatVariable, tuple[str, ...], bool]],
        cells: Sequence[tuple[tuple[str, ...], int]],
    ) -> Answer:
        dimension: dict[str, Any] = {}
        ids: list[str] = []
        sizes: list[int] = []
        time_id = None

        def add(dim_id: str, label: str, category: dict[str, Any]) -> None:
            dimension[dim_id] = {"label": label, "category": category}
            ids.append(dim_id)
            sizes.append(len(category["index"]))

        for variable, codes, show in selection:
            if not show:
                continue
            if variable.time:
                # ContentsCode comes just before the time dimension, as StatBank sends it.
                add(
                    "ContentsCode",
                    "Indhold",
                    {
                        "index": {table.id: 0},
                        "label": {table.id: table.text[lang]},
                        "unit": {table.id: {"base": table.unit[lang], "decimals": 0}},
                    },
                )
                time_id = variable.id
            add(
                variable.id,
                variable.text[lang],
                {
                    "index": {code: i for i, code in enumerate(codes)},
                    "label": {code: variable.label(code, lang) for code in codes},
                },
            )
        dimension["id"] = ids
        dimension["size"] = sizes
        dimension["role"] = {"metric": ["ContentsCode"], "time": [time_id] if time_id else []}
        labels = [dimension[i]["label"] for i in ids]
        by, and_ = ("by", "and") if lang == "en" else ("efter", "og")
        described = (
            f"{', '.join(labels[:-1])} {and_} {labels[-1]}" if len(labels) > 1 else labels[0]
        )
        dataset = {
            "dimension": dimension,
            "label": f"{table.text[lang]} {by} {described}",
            "source": "Demo Kommune (synthetic data)",
            "updated": table.updated_utc,
            "value": [value for _, value in cells],
            "extension": {
                "px": {
                    "infofile": "https://demo.invalid/dokumentation/DEMOFOLK",
                    "tableid": table.id,
                    "decimals": 0,
                }
            },
        }
        headers = {"Content-Disposition": f"attachment; filename={table.id}.json"}
        return Answer(200, JSON_TYPE, _json({"dataset": dataset}), headers)
