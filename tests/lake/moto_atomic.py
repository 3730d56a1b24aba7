"""moto's S3 server, each conditional write checked and stored as one step.

moto 5 checks `If-None-Match`/`If-Match` and then stores the object with nothing in between to
stop a second request, and its server handles requests in threads. Two writers racing for the
same Delta log entry could both be told 200, and one commit was gone (seen once under load:
39 of 40 rows in `test_four_processes_appending_on_s3_lose_nothing`, every writer exiting 0).
Real S3 decides a conditional write atomically; this makes the test double do the same, so a
lost commit in our tests is ours or delta-rs's, not moto's.

Run as `python -m tests.lake.moto_atomic -H 127.0.0.1 -p PORT` (moto_server's arguments).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto import server

_CONDITIONS = ("HTTP_IF_NONE_MATCH", "HTTP_IF_MATCH")


def serialize_conditional_writes(app_class: type) -> type:
    """A subclass of moto's WSGI application that runs conditional writes one at a time."""
    lock = threading.Lock()

    class ConditionalWritesInTurn(app_class):  # type: ignore[misc, valid-type]
        def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
            conditional = environ.get("REQUEST_METHOD") in ("PUT", "POST") and any(
                name in environ for name in _CONDITIONS
            )
            if not conditional:
                return super().__call__(environ, start_response)
            with lock:  # moto stores the object inside the call; only sending the answer is left
                return super().__call__(environ, start_response)

    return ConditionalWritesInTurn


def main() -> None:
    server.DomainDispatcherApplication = serialize_conditional_writes(  # type: ignore[misc]
        server.DomainDispatcherApplication
    )
    server.main()


if __name__ == "__main__":
    main()
