"""Keeping secrets (keys, passwords, tokens) out of our logs and error messages.

URLs lose their user:password and the values of secret query parameters; messages are
scrubbed of the exact values each auth reports through `secret_values()` and
`secret_params()`. httpx logs every request URL itself, so its logger gets a filter too:
`make_client` installs it, not the import, so importing this package configures no logging.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

import httpx

REDACTED = "REDACTED"
# Query parameters whose values are treated as secrets wherever a URL is logged or shown.
SECRET_PARAM_NAMES = frozenset(
    {
        "access_token",
        "api-key",
        "api_key",
        "apikey",
        "client_secret",
        "code",
        "key",
        "password",
        "secret",
        "sig",
        "signature",
        "token",
    }
)


def redact_url(url: httpx.URL | str, secret_params: Iterable[str] = ()) -> str:
    """The URL without user:password and with secret query values replaced by REDACTED."""
    parsed = httpx.URL(str(url))
    names = SECRET_PARAM_NAMES | {name.lower() for name in secret_params}
    params = [
        (name, REDACTED if name.lower() in names else value)
        for name, value in parsed.params.multi_items()
    ]
    cleaned = parsed.copy_with(userinfo=b"", params=params or None)
    return str(cleaned)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value replaced by REDACTED (longest first, so a secret that
    contains another is not left half shown)."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


class _RedactHttpxUrls(logging.Filter):
    """httpx logs every request URL at INFO; an API key in the query would end up in logs."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_url(arg, self.names) if isinstance(arg, httpx.URL) else arg
                for arg in record.args
            )
        return True


_HTTPX_FILTER_LOCK = threading.Lock()


def redact_httpx_logs(secret_params: Iterable[str]) -> None:
    """Make sure httpx's logger redacts URLs, `secret_params` included (one filter per
    process, shared by every client)."""
    with _HTTPX_FILTER_LOCK:
        logger = logging.getLogger("httpx")
        existing = [f for f in logger.filters if isinstance(f, _RedactHttpxUrls)]
        redactor = existing[0] if existing else _RedactHttpxUrls()
        if not existing:
            logger.addFilter(redactor)
        redactor.names.update(name.lower() for name in secret_params)


def auth_secrets(auth: httpx.Auth | None) -> tuple[str, ...]:
    """The values `auth` says must not be shown; none for an auth without `secret_values`."""
    values = getattr(auth, "secret_values", None)
    return tuple(values()) if callable(values) else ()


def auth_secret_params(auth: httpx.Auth | None) -> tuple[str, ...]:
    """The query parameters `auth` puts secrets in; none without `secret_params`."""
    params = getattr(auth, "secret_params", None)
    return tuple(params()) if callable(params) else ()
