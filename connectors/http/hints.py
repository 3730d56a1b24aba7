"""What to tell a person when a request fails: whether repeating it can help at all, and
what to check. Kept apart from the retry loop, which only needs the verdict.
"""

from __future__ import annotations

import ssl

import httpx

# Transport errors that the next attempt would meet again: a bad URL scheme, a malformed
# request, or a TLS certificate problem (ours refused, or theirs not trusted).
_PERMANENT_ERRORS = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)


def permanent_problem(exc: BaseException) -> str | None:
    """A hint if repeating the request cannot help, else None."""
    if isinstance(exc, _PERMANENT_ERRORS):
        return "The request itself is wrong: check the URL (scheme https/http) and headers"
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return (
                "The server's certificate is not trusted: check the host name, or pass "
                "ca_bundle= when the service uses a private CA"
            )
        reason = getattr(seen, "reason", None) or ""
        if isinstance(seen, ssl.SSLError) and ("CERTIFICATE" in reason or "UNKNOWN_CA" in reason):
            return (
                "The server refused our client certificate: check cert= (certificate and key "
                "files), that the service has it registered, and that it has not expired"
            )
        seen = seen.__cause__ or seen.__context__
    return None


def first_line(response: httpx.Response, limit: int = 200) -> str:
    """The body's first line, cut to `limit` characters: often the service's own reason."""
    try:
        text = response.text.strip()
    except (UnicodeDecodeError, LookupError):
        return ""
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def hint_for_status(status: int, host: str) -> str:
    """What to check when the service answered `status`, after any retries."""
    if status in (401, 403):
        return (
            "The credentials were refused: check the API key, user/password, token or "
            "client certificate configured for this source"
        )
    if status == 404:
        return "The service says it does not exist: check the URL and the identifiers in it"
    if status == 429:
        return (
            f"{host} kept rate limiting: lower HttpSettings.rate_limit for it, "
            "or run the load later"
        )
    if status >= 500:
        return (
            f"{host} kept failing: run the load again later; if it persists, "
            "check the service's status page"
        )
    return "The service rejected the request: check its parameters against the API's docs"
