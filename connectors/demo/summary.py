"""What ``generate`` produced: per dataset the file, its row count and where defects sit."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date

from .places import KOMMUNEKODE, KOMMUNENAVN

MANIFEST_NAME = "_demo_manifest.json"
_NUMBER_LIST = re.compile(r"\[\s*((?:\d+,?\s*)+)\]")

# How to read the row numbers in the manifest, per kind of file.
CSV_LINE = "csv line number, the header line is line 1"
EXCEL_ROW = "Excel sheet row number as Excel shows it"
JSON_POSITION = "1-based position in the JSON array"
NDJSON_LINE = "line number, first record is line 1"


@dataclass(frozen=True)
class DatasetSummary:
    path: str  # relative to the drop folder, with forward slashes
    rows: int  # data records written, header excluded
    row_numbering: str
    defects: dict[str, tuple[int, ...]]  # kind -> 1-based row numbers
    drift: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def file(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def defect_rows(self) -> set[int]:
        return {row for rows in self.defects.values() for row in rows}

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "file": self.file,
            "path": self.path,
            "rows": self.rows,
            "row_numbering": self.row_numbering,
            "defects": {k: {"count": len(v), "rows": list(v)} for k, v in self.defects.items()},
        }
        if self.drift:
            out["drift"] = {k: {"count": len(v), "rows": list(v)} for k, v in self.drift.items()}
        return out


@dataclass(frozen=True)
class DemoSummary:
    seed: int
    persons: int
    defect_rate: float
    extract_date: date
    datasets: dict[str, DatasetSummary]

    def to_json(self) -> dict[str, object]:
        return {
            "generator": "connectors.demo",
            "kommune": KOMMUNENAVN,
            "kommunekode": KOMMUNEKODE,
            "seed": self.seed,
            "persons": self.persons,
            "defect_rate": self.defect_rate,
            "extract_date": self.extract_date.isoformat(),
            "datasets": {name: ds.to_json() for name, ds in self.datasets.items()},
        }

    def manifest_bytes(self) -> bytes:
        text = json.dumps(self.to_json(), ensure_ascii=False, indent=2)
        # Row-number lists on one line each; indented they would be thousands of lines long.
        text = _NUMBER_LIST.sub(
            lambda m: "[" + ", ".join(re.findall(r"\d+", m.group(1))) + "]", text
        )
        return (text + "\n").encode("utf-8")


@dataclass(frozen=True)
class BuiltExtract:
    name: str  # dataset name = drop sub-folder
    content: bytes
    summary: DatasetSummary
