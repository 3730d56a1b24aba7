"""The one way to declare a contract field, so every column carries its documentation.

Each field states what it means (description), how sensitive it is (classification), which
glossary concept it belongs to, and whether it identifies a person (identifier). The lake
pseudonymises identifier fields in silver; the catalog and the UI show the rest.
"""

from __future__ import annotations

from typing import Any, Literal

import pandera.polars as pa

Classification = Literal["public", "internal", "personal", "sensitive"]
CLASSIFICATIONS: tuple[Classification, ...] = ("public", "internal", "personal", "sensitive")

# An identifier field is replaced by a keyed pseudonym in silver. The domain keeps the
# pseudonym spaces apart: the same CPR maps to the same token in every dataset (joins work),
# while a surname never shares a token with anything else.
IdentifierDomain = Literal["cpr", "name"]


def field(
    description: str,
    classification: Classification,
    *,
    concept: str | None = None,
    identifier: IdentifierDomain | None = None,
    nullable: bool = False,
    **checks: Any,
) -> Any:
    """A pandera Field with kommunelake's metadata; extra keyword arguments are pandera checks."""
    if classification not in CLASSIFICATIONS:
        raise ValueError(f"classification must be one of {CLASSIFICATIONS}, got {classification!r}")
    if identifier and classification not in ("personal", "sensitive"):
        raise ValueError("only personal or sensitive fields can be person identifiers")
    metadata = {"classification": classification, "concept": concept, "identifier": identifier}
    return pa.Field(description=description, nullable=nullable, metadata=metadata, **checks)
