"""Reading the dataset YAML's `format:` block: typos and wrong types are errors, not defaults."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.formats.errors import FormatError


def check_keys(
    options: Mapping[str, Any], allowed: set[str], kind: str, *, source_name: str
) -> None:
    # A misspelt `delimeter:` silently ignored would read the file wrong without a word.
    unknown = sorted(set(options) - allowed - {"type"})
    if unknown:
        raise FormatError(
            source_name,
            f"unknown `format:` option{'s' if len(unknown) > 1 else ''} "
            + ", ".join(f"`{k}`" for k in unknown)
            + f" for type {kind}",
            "Remove or fix it in the dataset YAML; supported: "
            + ", ".join(f"`{k}`" for k in sorted(allowed)),
        )


def non_negative_int(
    options: Mapping[str, Any], key: str, default: int, *, source_name: str
) -> int:
    value = options.get(key)
    if value is None:
        return default
    # YAML `true` is an int to Python; it is never a row count.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FormatError(
            source_name,
            f"`{key}` must be a whole number >= 0, got {value!r}",
            f"Fix `{key}` in the dataset YAML",
        )
    return value


def optional_str(options: Mapping[str, Any], key: str, *, source_name: str) -> str | None:
    value = options.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise FormatError(
            source_name,
            f"`{key}` must be text, got {value!r}",
            f"Fix `{key}` in the dataset YAML",
        )
    return value


def positive_number(
    options: Mapping[str, Any], key: str, default: int, *, source_name: str, whole: bool = True
) -> int | float:
    """A limit: a number > 0 (whole unless `whole=False`), or `default` when not set."""
    value = options.get(key)
    if value is None:
        return default
    kinds: tuple[type, ...] = (int,) if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not value > 0:
        raise FormatError(
            source_name,
            f"`{key}` must be a {'whole ' if whole else ''}number > 0, got {value!r}",
            f"Fix `{key}` in the dataset YAML",
        )
    return value


def flag(options: Mapping[str, Any], key: str, *, source_name: str) -> bool:
    value = options.get(key, False)
    if not isinstance(value, bool):
        raise FormatError(
            source_name,
            f"`{key}` must be true or false, got {value!r}",
            f"Fix `{key}` in the dataset YAML",
        )
    return value
