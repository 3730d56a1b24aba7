"""What a check's metadata may contribute to a message: counts and file names, nothing else.

Check metadata can quote data: example rows, a header that was really the first data row,
failing values. A notification leaves the platform (a chat channel, a mailbox), so it takes
only numbers and file names from metadata, and drops even a number that has the shape of a
CPR number.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from lake.privacy import redact

MAX_FILES = 5
# A file name: no path, no spaces, a known extract extension. Anything else in free text is
# left out, because it may be data.
_FILE_NAME = re.compile(
    r"(?<![\w/\\.-])[\wæøåÆØÅ][\wæøåÆØÅ.-]{0,120}\."
    r"(?:csv|tsv|txt|dat|xlsx|xlsm|xls|ods|json|ndjson|jsonl|xml|zip|gz|parquet)(?![\w.])",
    re.IGNORECASE,
)
_LIST_ITEM = re.compile(r"^\s*[-*]\s+\S")


def raw_value(entry: Any) -> Any:
    """The plain value of a Dagster MetadataValue (or of a plain value)."""
    return getattr(entry, "value", entry)


def counts_from_metadata(metadata: Mapping[str, Any]) -> dict[str, int | float]:
    """Numeric metadata as counts, and the number of items of a markdown list (e.g. one per
    rejected file). Booleans, text and numbers shaped like a CPR number are left out."""
    counts: dict[str, int | float] = {}
    for name, entry in metadata.items():
        value = raw_value(entry)
        label = redact(str(name))
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            if isinstance(value, float) and not math.isfinite(value):
                continue
            if redact(str(value)) != str(value):
                continue  # could be an identifier that ended up in a numeric field
            counts[label] = value
        elif isinstance(value, str):
            items = sum(1 for line in value.splitlines() if _LIST_ITEM.match(line))
            if items:
                counts[label] = items
    return counts


def files_from_metadata(metadata: Mapping[str, Any]) -> tuple[str, ...]:
    """File names mentioned in text metadata (e.g. rejected files), first few, redacted."""
    found: list[str] = []
    for entry in metadata.values():
        value = raw_value(entry)
        if not isinstance(value, str):
            continue
        for match in _FILE_NAME.finditer(value):
            name = redact(match.group())
            if name not in found:
                found.append(name)
    return tuple(found[:MAX_FILES])
