"""An S3 proxy on 127.0.0.1 that makes Delta commits ambiguous: the commit reaches the store,
the writer is told it failed.

It forwards every request to a real S3 (moto). When armed, the next PUT of a Delta log entry
(`.../_delta_log/NNNNNNNNNNNNNNNNNNNN.json`) under a given prefix is forwarded, and when the
store accepted it, the writer gets a 500 (`how="500"`) or a closed connection (`how="drop"`)
instead of the 200: the log entry is written, the writer cannot know it. Armed with other
`entries` (a pattern of the object keys to fault) it does the same to other PUTs, and with
`how="503"` it answers 503 SlowDown without forwarding (the store never sees the request),
to a PUT or, with `method="GET"`, a read.

The proxy runs in its own process (`python tests/lake/commit_faults.py UPSTREAM PORT`): an
in-process server would deadlock against deltalake calls that wait on HTTP while holding the
GIL (`DeltaTable.history()` does). It is controlled over HTTP on paths no S3 key can have:
`POST /_faults/arm` (JSON `{"prefix": ..., "how": ...}`) and `GET /_faults/injected`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import json
import re
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

COMMIT_ENTRY = re.compile(r"/_delta_log/\d{20}\.json$")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@contextlib.contextmanager
def ambiguous_commit_proxy(upstream_url: str, workdir: Path) -> Iterator[FaultyProxy]:
    from tests.lake.objectstores import _process, free_port

    port = free_port()
    command = [sys.executable, __file__, upstream_url, str(port)]
    url = f"http://127.0.0.1:{port}"
    with _process(command, url + "/_faults/injected", workdir / "proxy.log"):
        yield FaultyProxy(url)


@dataclasses.dataclass(frozen=True)
class FaultyProxy:
    url: str  # an S3 endpoint: AWS_ENDPOINT_URL

    def arm(
        self,
        prefix: str,
        how: str = "500",
        entries: str = COMMIT_ENTRY.pattern,
        method: str = "PUT",
    ) -> None:
        """Make the next accepted commit under `prefix` (bucket/key prefix) look failed, or
        the next request (`method`) of a key matching `entries` there."""
        rule = {"prefix": prefix, "how": how, "entries": entries, "method": method}
        httpx.post(f"{self.url}/_faults/arm", json=rule).raise_for_status()

    def injected(self) -> list[str]:
        """Object keys (bucket/key) of the commits that were written but reported failed."""
        return httpx.get(f"{self.url}/_faults/injected").json()


# --- the proxy process --------------------------------------------------------------------


class _Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream: httpx.Client
    armed: list[dict[str, str]]
    injected: list[str]
    lock: threading.Lock

    def log_message(self, format: str, *args: object) -> None:
        return

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if "content-length" not in {h.lower() for h in headers or {}}:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _control(self, body: bytes) -> None:
        if self.command == "POST" and self.path == "/_faults/arm":
            with self.lock:
                self.armed.append(json.loads(body))
            return self._reply(204, b"")
        with self.lock:
            self._reply(200, json.dumps(self.injected).encode())

    def _claim(self, key: str, *, forwarded: bool) -> str | None:
        """The fault armed for this PUT, if any (each fires once): before it is forwarded
        ("503") or once the store accepted it (the others)."""
        with self.lock:
            for rule in self.armed:
                if (
                    key.startswith(rule["prefix"])
                    and rule["method"] == self.command
                    and re.search(rule["entries"], key)
                    and (rule["how"] != "503") == forwarded
                ):
                    self.armed.remove(rule)
                    self.injected.append(key)
                    return rule["how"]
        return None

    def _body(self) -> bytes:
        """The request's body; pyarrow sends multipart parts chunked, without a length
        (read as empty, each landed file was stored as 0 bytes)."""
        if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF after each chunk
        while self.rfile.readline().strip():  # trailers, up to the empty line
            pass
        return b"".join(chunks)

    def _forward(self) -> None:
        body = self._body()
        if self.path.startswith("/_faults/"):
            return self._control(body)
        key = unquote(urlsplit(self.path).path).lstrip("/")
        if self._claim(key, forwarded=False):
            error = b"<Error><Code>SlowDown</Code><Message>injected</Message></Error>"
            return self._reply(503, error, {"Content-Type": "application/xml"})
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        answer = self.upstream.request(self.command, self.path, content=body, headers=headers)
        accepted = self.command == "PUT" and answer.status_code == 200
        fault = self._claim(key, forwarded=True) if accepted else None
        if fault == "drop":  # the entry is written; the writer sees the connection die
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault == "500":
            error = b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"
            return self._reply(500, error, {"Content-Type": "application/xml"})
        passed = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
        passed.pop("content-encoding", None)  # httpx decoded the body
        if self.command == "HEAD":
            passed["Content-Length"] = answer.headers.get("content-length", "0")
        self._reply(answer.status_code, answer.content, passed)

    do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _forward


def main(upstream: str, port: int) -> None:
    handler = type(
        "Handler",
        (_Proxy,),
        {
            "upstream": httpx.Client(base_url=upstream, timeout=60),
            "armed": [],
            "injected": [],
            "lock": threading.Lock(),
        },
    )
    http.server.ThreadingHTTPServer(("127.0.0.1", port), handler).serve_forever()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
