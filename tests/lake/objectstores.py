"""Real object stores on 127.0.0.1 for the storage tests: moto (S3), Azurite (Azure Blob), and
a dishonest S3 that accepts every PUT.

Each server starts on a free port and is stopped (SIGTERM, then SIGKILL) when its context
ends. `s3_environment` / `azure_environment` give the AWS_* / AZURE_* variables a real lake
would be configured with; tests set them with monkeypatch.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import http.server
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

import httpx

REPO = Path(__file__).resolve().parents[2]
AZURITE_DIR = REPO / "tests" / "azurite"
AZURITE_BLOB = AZURITE_DIR / "node_modules" / ".bin" / "azurite-blob"
AZURITE_MISSING = (
    "Azurite is not installed: run `make azurite` (npm ci in tests/azurite; needs node/npm)"
)
EMULATOR_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


@dataclass(frozen=True)
class Server:
    url: str  # http://127.0.0.1:PORT

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def azurite_installed() -> bool:
    return AZURITE_BLOB.exists() and shutil.which("node") is not None


def _wait_for(url: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"server for {url} did not answer within {timeout:.0f}s")


@contextlib.contextmanager
def _process(command: list[str], url: str, log: Path) -> Iterator[None]:
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        _wait_for(url, process)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextlib.contextmanager
def moto_server(workdir: Path) -> Iterator[Server]:
    """moto's S3 server on 127.0.0.1, with conditional writes made atomic as on S3
    (`tests/lake/moto_atomic.py`): an S3 that honours If-None-Match."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "tests.lake.moto_atomic", "-H", "127.0.0.1", "-p", str(port)]
    with _process(command, url, workdir / "moto.log"):
        yield Server(url)


@contextlib.contextmanager
def azurite_server(workdir: Path) -> Iterator[Server]:
    """Azurite's blob service from tests/azurite (installed by `make azurite`)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    location = workdir / "azurite"
    location.mkdir(parents=True, exist_ok=True)
    command = [
        str(AZURITE_BLOB),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--location",
        str(location),
        "--silent",
        "--disableTelemetry",
        "--skipApiVersionCheck",  # the Azure SDKs may speak a newer API version than Azurite
    ]
    with _process(command, url, workdir / "azurite.log"):
        yield Server(url)


def s3_environment(server: Server) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": server.url,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }


def azure_environment(server: Server) -> dict[str, str]:
    return {
        "AZURE_STORAGE_ACCOUNT_NAME": "devstoreaccount1",
        "AZURE_STORAGE_ACCOUNT_KEY": EMULATOR_KEY,
        "AZURE_STORAGE_USE_EMULATOR": "true",
        # Read by deltalake (object_store) and DuckDB's delta extension in emulator mode.
        "AZURITE_BLOB_STORAGE_URL": server.url,
    }


def s3_client(server: Server):
    """A boto3 S3 client for the moto server: our own code never lists or creates with it."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=server.url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


def create_bucket(server: Server) -> str:
    name = f"lake-{uuid.uuid4().hex[:12]}"
    s3_client(server).create_bucket(Bucket=name)
    return name


def create_container(server: Server) -> str:
    from azure.storage.blob import BlobServiceClient

    name = f"lake-{uuid.uuid4().hex[:12]}"
    connection = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={EMULATOR_KEY};BlobEndpoint={server.url}/devstoreaccount1;"
    )
    BlobServiceClient.from_connection_string(connection).create_container(name)
    return name


def s3_keys(server: Server, bucket: str) -> list[str]:
    """Every key in the bucket, listed with boto3."""
    pages = s3_client(server).get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def azure_keys(server: Server, container: str) -> list[str]:
    """Every blob name in the container, listed with azure-storage-blob."""
    from azure.storage.blob import BlobServiceClient

    connection = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={EMULATOR_KEY};BlobEndpoint={server.url}/devstoreaccount1;"
    )
    client = BlobServiceClient.from_connection_string(connection)
    return [blob.name for blob in client.get_container_client(container).list_blobs()]


# --- an S3 that ignores If-None-Match ------------------------------------------------------


class _CarelessS3(http.server.BaseHTTPRequestHandler):
    """Just enough S3 for deltalake: PUT/GET/HEAD/DELETE objects and ListObjectsV2, path
    style, no authentication, and every PUT accepted (If-None-Match is ignored) — like an
    S3-compatible service from before conditional writes."""

    protocol_version = "HTTP/1.1"
    objects: dict[tuple[str, str], tuple[bytes, str]]  # set per server

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return

    def _split(self) -> tuple[str, str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        bucket, _, key = unquote(parts.path).lstrip("/").partition("/")
        return bucket, key, parse_qs(parts.query, keep_blank_values=True)

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_PUT(self) -> None:
        bucket, key, _ = self._split()
        data = self._body()
        etag = '"' + hashlib.md5(data).hexdigest() + '"'
        stamp = dt.datetime.now(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
        self.objects[(bucket, key)] = (data, stamp)
        self._send(200, headers={"ETag": etag})

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        bucket, key, query = self._split()
        if not key and query.get("list-type") == ["2"]:
            return self._list(bucket, query)
        found = self.objects.get((bucket, key))
        if found is None:
            return self._send(404, b"<Error><Code>NoSuchKey</Code></Error>")
        data, stamp = found
        headers = {"ETag": '"' + hashlib.md5(data).hexdigest() + '"', "Last-Modified": stamp}
        byte_range = self.headers.get("Range")
        if byte_range and self.command == "GET":
            start, _, end = byte_range.removeprefix("bytes=").partition("-")
            first = int(start) if start else len(data) - int(end)
            last = int(end) if start and end else len(data) - 1
            headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
            return self._send(206, data[first : last + 1], headers)
        self._send(200, data, headers)

    def _list(self, bucket: str, query: dict[str, list[str]]) -> None:
        prefix = query.get("prefix", [""])[0]
        after = query.get("start-after", [""])[0]
        delimiter = query.get("delimiter", [""])[0]
        keys, prefixes = [], set()
        for (b, key), (data, _) in sorted(self.objects.items()):
            if b != bucket or not key.startswith(prefix) or key <= after:
                continue
            rest = key[len(prefix) :]
            if delimiter and delimiter in rest:
                prefixes.add(prefix + rest.split(delimiter)[0] + delimiter)
            else:
                keys.append((key, len(data)))
        contents = "".join(
            f"<Contents><Key>{escape(k)}</Key><LastModified>2026-01-01T00:00:00.000Z"
            f"</LastModified><ETag>&quot;x&quot;</ETag><Size>{n}</Size></Contents>"
            for k, n in keys
        )
        common = "".join(
            f"<CommonPrefixes><Prefix>{escape(p)}</Prefix></CommonPrefixes>"
            for p in sorted(prefixes)
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult '
            'xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>{escape(bucket)}</Name><Prefix>{escape(prefix)}</Prefix>"
            f"<KeyCount>{len(keys) + len(prefixes)}</KeyCount><MaxKeys>1000</MaxKeys>"
            f"<IsTruncated>false</IsTruncated>{contents}{common}</ListBucketResult>"
        ).encode()
        self._send(200, body, {"Content-Type": "application/xml"})

    def do_DELETE(self) -> None:
        bucket, key, _ = self._split()
        self.objects.pop((bucket, key), None)
        self._send(204)

    def do_POST(self) -> None:  # DeleteObjects (bulk delete) and the like: not needed
        self._body()
        self._send(501, b"<Error><Code>NotImplemented</Code></Error>")


@contextlib.contextmanager
def careless_s3() -> Iterator[Server]:
    """An in-process S3 on 127.0.0.1 that accepts every PUT, conditional or not."""
    handler = type("Handler", (_CarelessS3,), {"objects": {}})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def container_client(server: Server, container: str):
    """An azure-storage-blob ContainerClient for an Azurite container (tests only)."""
    from azure.storage.blob import BlobServiceClient

    connection = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={EMULATOR_KEY};BlobEndpoint={server.url}/devstoreaccount1;"
    )
    return BlobServiceClient.from_connection_string(connection).get_container_client(container)
