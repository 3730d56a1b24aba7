"""The errors a request can end in.

`HttpError` is the one connectors see: what failed, where, how often, what to do.
`TokenRequestError` only travels from the OAuth2 auth flow to `HttpClient`, which turns it
into an `HttpError` (retrying first when the token endpoint was the one failing).
"""

from __future__ import annotations

from typing import Any


class HttpError(Exception):
    """A request that did not succeed, in one line: what, where, how often, what to do.

    `status` is None when no response came (network, timeout, reset). `transient` says the
    cause was the service or the network (429, 5xx, transport) rather than the request.
    """

    def __init__(
        self,
        method: str,
        url: str,
        *,
        status: int | None,
        attempts: int,
        reason: str,
        hint: str,
        transient: bool,
    ) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.attempts = attempts
        self.reason = " ".join(reason.split())
        self.hint = " ".join(hint.split())
        self.transient = transient
        super().__init__(str(self))

    def __str__(self) -> str:
        tries = f"{self.attempts} attempt{'s' if self.attempts != 1 else ''}"
        return f"{self.method} {self.url}: {self.reason} (after {tries}). {self.hint}"

    def __reduce__(self) -> tuple[Any, ...]:  # Dagster pickles errors between processes
        return (_rebuild_http_error, (self.method, self.url, self._fields()))

    def _fields(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "attempts": self.attempts,
            "reason": self.reason,
            "hint": self.hint,
            "transient": self.transient,
        }


def _rebuild_http_error(method: str, url: str, fields: dict[str, Any]) -> HttpError:
    return HttpError(method, url, **fields)


class TokenRequestError(Exception):
    """The OAuth2 token endpoint did not hand out a token (raised inside the auth flow)."""

    def __init__(self, status: int, detail: str, retry_after: str | None = None) -> None:
        self.status = status
        self.detail = detail
        self.retry_after = retry_after
        super().__init__(f"token endpoint answered {status}: {detail}")
