"""A paged API load killed for real (SIGKILL, from outside) during pagination resumes to the
same silver as an uninterrupted load, fetching nothing twice but the page that was in flight.

The load (`dar_address_history`, small pages) runs in a child process against the demo's
Datafordeler service through a counting proxy on 127.0.0.1, which records the `after`
cursor of every page request, so "fetched twice" is counted at the server side. Two ways to
time the kill:

- `in_flight`: the proxy holds the request for page k+1; once it has arrived (so pages
  1..k are landed and their resume point saved) the parent SIGKILLs the child;
- `landing`: the proxy answers page k+1 and the parent SIGKILLs the child at once, while it
  handles the answer (in practice before page k+1 is in the landing manifest);
- `landed`: the parent watches the landing folder and SIGKILLs the child as soon as page k+1's
  file is there, while its manifest row is being committed;
- `committed`: the parent watches the landing manifest's Delta log and SIGKILLs the child as
  soon as page k+1's row is committed, while its resume point is being saved.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import polars as pl
import pytest

from connectors.demo.services import DemoServices
from lake import cursors
from lake.home import Home
from lake.landing import manifest
from pipelines.ingest import load_dataset
from pipelines.specs import spec_by_name
from tests.conftest import TEST_KEY

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"
FIRST = 15  # nodes per page: many pages from a small demo
BASE = spec_by_name("dar_address_history")
SPEC = dataclasses.replace(BASE, source={**BASE.source, "first": FIRST})
KEYS = ["address_id", "registreringFra", "virkningFra"]
LINEAGE = ["_batch_id", "_source_file", "_ingested_at"]
CHILD = """
import dataclasses, sys
from pathlib import Path
from lake.home import Home
from pipelines.ingest import load_dataset
from pipelines.specs import spec_by_name

base = spec_by_name("dar_address_history")
spec = dataclasses.replace(base, source={**base.source, "first": int(sys.argv[2])})
load_dataset(spec, Home(Path(sys.argv[1])), bytes.fromhex(sys.argv[3]))
"""


class CountingProxy:
    """Forwards POSTs to the demo service and records each request's `after` variable.

    `hold` (a request number, 1-based): that request waits until `release` is set;
    `answered` is set once request number `signal_after` has been answered."""

    def __init__(self, target: str) -> None:
        self.afters: list[str | None] = []
        self.hold: int | None = None
        self.signal_after: int | None = None
        self.arrived, self.release, self.answered = (threading.Event() for _ in range(3))
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with proxy.lock:
                    proxy.afters.append(json.loads(body)["variables"].get("after"))
                    number = len(proxy.afters)
                if number == proxy.hold:
                    proxy.arrived.set()
                    proxy.release.wait(60)
                answer = httpx.post(
                    target + self.path,
                    content=body,
                    headers={"Content-Type": "application/json"},
                    trust_env=False,
                )
                try:
                    self.send_response(answer.status_code)
                    self.send_header("Content-Type", answer.headers["Content-Type"])
                    self.send_header("Content-Length", str(len(answer.content)))
                    self.end_headers()
                    self.wfile.write(answer.content)
                    self.wfile.flush()
                except OSError:  # the child was killed while we held its request
                    return
                if number == proxy.signal_after:
                    proxy.answered.set()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self) -> list[str | None]:
        """The `after` cursors requested since the last take, in order."""
        with self.lock:
            taken, self.afters = self.afters, []
        return taken

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoServices]:
    services = DemoServices(persons=400)
    services.start()
    yield services
    services.stop()


@pytest.fixture
def proxy(demo, monkeypatch) -> Iterator[CountingProxy]:
    counting = CountingProxy(demo.urls.datafordeler)
    monkeypatch.setenv("SOURCES__DATAFORDELER__BASE_URL", counting.url)
    monkeypatch.setenv("SOURCES__DATAFORDELER__API_KEY", demo.urls.api_key)
    yield counting
    counting.close()


@pytest.fixture(scope="module")
def reference(demo, tmp_path_factory) -> tuple[pl.DataFrame, list[str | None]]:
    """An uninterrupted load's silver, and the `after` cursor of each of its page requests."""
    counting = CountingProxy(demo.urls.datafordeler)
    home = Home(tmp_path_factory.mktemp("reference") / "home")
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SOURCES__DATAFORDELER__BASE_URL", counting.url)
            patch.setenv("SOURCES__DATAFORDELER__API_KEY", demo.urls.api_key)
            report = load_dataset(SPEC, home, TEST_KEY)
        afters = counting.take()
    finally:
        counting.close()
    assert len(report.batches) == len(afters) >= 12  # enough pages to cut anywhere
    assert afters[0] is None and len(set(afters)) == len(afters)
    return silver(home), afters


def silver(home: Home) -> pl.DataFrame:
    frame = pl.read_delta(home.table_uri("silver", SPEC.name)).drop(LINEAGE)
    return frame.sort(frame.columns)


def start_child(home: Home, proxy: CountingProxy) -> subprocess.Popen[bytes]:
    python = PYTHON if PYTHON.exists() else Path(sys.executable)
    env = {
        **os.environ,
        "SOURCES__DATAFORDELER__BASE_URL": proxy.url,
        "PYTHONPATH": str(REPO),
    }
    return subprocess.Popen(
        [str(python), "-c", CHILD, str(home.root), str(FIRST), TEST_KEY.hex()],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def landed_files(home: Home) -> int:
    """Page files in the landing folder (temporary files start with a dot)."""
    folder = home.landing / SPEC.name
    return sum(1 for p in folder.rglob("*.json") if not p.name.startswith("."))


def manifest_commits(home: Home) -> int:
    """Commits of the landing manifest: one per page landed (this test lands nothing else)."""
    return len(list((Path(home.manifest_uri) / "_delta_log").glob("*.json")))


def wait_for_files(home: Home, count: int, child: subprocess.Popen[bytes], mode: str) -> None:
    counted = landed_files if mode == "landed" else manifest_commits
    deadline = time.monotonic() + 120
    while counted(home) < count:
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            pytest.fail(f"the child never landed {count} pages")
        time.sleep(0.001)


def wait_for(event: threading.Event, child: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while not event.wait(0.05):
        if child.poll() is not None:
            assert child.stderr is not None
            pytest.fail(f"the child ended before the kill: {child.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            child.kill()
            pytest.fail("the child never reached the page to kill it at")


@pytest.mark.parametrize(
    ("mode", "k"),
    [
        ("in_flight", 1),
        ("in_flight", 4),
        ("in_flight", 9),
        ("landing", 2),
        ("landing", 6),
        ("landed", 3),
        ("landed", 7),
        ("committed", 5),
        ("committed", 10),
    ],
)
def test_sigkill_during_pagination_resumes_to_the_same_silver(
    tmp_path, proxy, reference, mode, k
) -> None:
    expected, pages = reference
    home = Home(tmp_path / "home")
    if mode == "in_flight":
        proxy.hold = k + 1
    elif mode == "landing":
        proxy.signal_after = k + 1

    with start_child(home, proxy) as child:
        if mode in ("landed", "committed"):
            wait_for_files(home, k + 1, child, mode)
        else:
            wait_for(proxy.arrived if mode == "in_flight" else proxy.answered, child)
        child.send_signal(signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL  # a real kill from outside
    proxy.release.set()
    first_run = proxy.take()
    assert first_run == pages[: len(first_run)]  # it paged in order up to the kill

    saved = cursors.latest(home, SPEC.name)
    landed = manifest(home.manifest_uri, SPEC.name)
    assert saved is not None and not saved.finished
    if mode == "in_flight":
        # Pages 1..k landed and their resume point saved; page k+1 was in flight.
        assert len(first_run) == k + 1 and saved.page == k and len(landed) == k
    else:
        # Page k+1 was answered (its file maybe stored); the kill fell while landing it or
        # committing its resume point, or at the latest while page k+2 was asked for.
        assert saved.page in (k, k + 1) and len(landed) in (k, k + 1)
        assert len(first_run) in (k + 1, k + 2)
        if mode == "landed":
            assert landed_files(home) >= k + 1
    resume_from = saved.page  # the next run asks for page resume_from + 1

    report = load_dataset(SPEC, home, TEST_KEY)  # to completion, in this process
    second_run = proxy.take()
    assert second_run == pages[resume_from:]  # from the resume point to the end, in order
    refetched = set(first_run) & set(second_run)
    # Nothing fetched twice after the resume point but the page that was in flight.
    assert refetched == set(pages[resume_from : len(first_run)]) and len(refetched) <= 1
    assert all(b.status == "loaded" for b in report.batches)
    assert len(manifest(home.manifest_uri, SPEC.name)) == len(pages)
    final = cursors.latest(home, SPEC.name)
    assert final is not None and final.finished

    result = silver(home)
    assert result.equals(expected)
    assert result.select(KEYS).unique().height == result.height  # no duplicate keys
