"""How every connector talks HTTP: timeouts, retry policy, rate limit and User-Agent.

Frozen and checked on construction, so a wrong value fails where a connector is configured
rather than on its first request. Seconds throughout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import metadata

import httpx

PROJECT_URL = "https://github.com/kommunelake"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@cache
def default_user_agent() -> str:
    try:
        version = metadata.version("kommunelake")
    except metadata.PackageNotFoundError:  # running from a checkout that is not installed
        version = "0+unknown"
    return f"kommunelake/{version} (+{PROJECT_URL})"


@dataclass(frozen=True)
class RateLimit:
    """At most `requests` requests to one host in any window of `per_seconds` seconds."""

    requests: int
    per_seconds: float

    def __post_init__(self) -> None:
        if self.requests < 1 or self.per_seconds <= 0:
            raise ValueError(f"rate limit must be >= 1 request per > 0 s, not {self}")


@dataclass(frozen=True)
class HttpSettings:
    """How every connector talks HTTP. Seconds throughout."""

    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    write_timeout: float = 60.0
    pool_timeout: float = 30.0
    max_attempts: int = 5  # the first try included
    backoff_base: float = 0.5  # attempt n waits random() * min(cap, base * 2**(n-1))
    backoff_cap: float = 30.0
    retry_after_cap: float = 120.0  # a longer Retry-After is cut to this, not obeyed
    rate_limit: RateLimit | None = None  # per host; None: no limit
    retry_statuses: frozenset[int] = RETRY_STATUSES
    user_agent: str = field(default_factory=default_user_agent)
    follow_redirects: bool = True
    trust_env: bool = True  # proxies and CA bundle from HTTP(S)_PROXY / SSL_CERT_FILE

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, not {self.max_attempts}")
        for name in ("connect_timeout", "read_timeout", "write_timeout", "pool_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0 seconds")
        if min(self.backoff_base, self.backoff_cap, self.retry_after_cap) < 0:
            raise ValueError("backoff_base, backoff_cap and retry_after_cap must be >= 0")

    @property
    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.connect_timeout,
            read=self.read_timeout,
            write=self.write_timeout,
            pool=self.pool_timeout,
        )
