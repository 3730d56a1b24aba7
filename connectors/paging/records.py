"""Reading a page's JSON answer: the records at `records_path`, other values at dot paths,
and errors that say where the answer did not look as configured.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Mapping
from typing import Any

import httpx

from connectors.http import redact_url
from connectors.paging.core import PagingError


def get_path(document: Any, path: str | None) -> Any:
    """`document` at a dot path ("result.results", "hits.hits", "items.0.id")."""
    current = document
    if not path:
        return current
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            raise KeyError(path)
    return current


def read_json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        # JSON is UTF-8 (RFC 8259), but some vendor services send ISO-8859-1 and say so in
        # Content-Type: read it in the charset declared rather than call it "not JSON".
        # Decoded strictly: `response.text` would replace bytes the charset lacks with U+FFFD
        # and load the damage, as it would bytes that a declared UTF-8 does not fit.
        declared = response.charset_encoding
        if isinstance(exc, UnicodeDecodeError) and declared and not _is_utf8(declared):
            try:
                return json.loads(response.content.decode(declared))
            except ValueError:
                pass
        raise PagingError(
            f"{response.request.method} {redact_url(response.request.url)}: the answer is not "
            f"JSON ({exc}). Check the URL and that the service returns JSON for it"
        ) from None


def _is_utf8(charset: str) -> bool:
    try:
        return codecs.lookup(charset).name.startswith("utf-8")
    except LookupError:  # a charset Python does not know: not one to decode with either
        return True


def where(response: httpx.Response) -> str:
    """The request behind `response`, URL redacted: how every error message starts."""
    return f"{response.request.method} {redact_url(response.request.url)}"


def records_at(response: httpx.Response, document: Any, path: str | None) -> list[Any]:
    try:
        found = get_path(document, path)
    except KeyError:
        keys = sorted(document) if isinstance(document, Mapping) else type(document).__name__
        raise PagingError(
            f"{where(response)}: no records at {path!r} (top level: {keys}). "
            "Set records_path to the dot path of the record list"
        ) from None
    if found is None:
        return []
    if not isinstance(found, list):
        raise PagingError(
            f"{where(response)}: {path or 'the body'} is a {type(found).__name__}, not a "
            "list of records. Set records_path to the dot path of the record list"
        )
    return found


def value_at(document: Any, path: str) -> Any:
    """`document` at a dot path, or None when nothing is there (an optional field)."""
    try:
        return get_path(document, path)
    except KeyError:
        return None


def advance_guard(response: httpx.Response, name: str, old: Any, new: Any) -> None:
    """Stop a source that hands back the same cursor or link: it would loop forever."""
    if new is not None and new == old:
        raise PagingError(
            f"{where(response)}: the {name} did not advance ({str(new)[:80]!r}), so the next "
            "page would be this one again. Check the paging parameters"
        )
