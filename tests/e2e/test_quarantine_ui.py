"""The Dagster UI for real, in a browser: a demo home loaded through the CLI, `kommunelake ui`
(webserver + daemon) on a free port, and headless Debian Chromium driven by Playwright on the
page of a dataset with quarantined rows. Screenshots are kept in tests/e2e/artifacts/."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from connectors.demo import generate
from lake import connect
from tests.conftest import TEST_KEY

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
PERSONS = 400
DATASET = "cpr_persons"
UI_TIMEOUT_MS = 60_000  # a React app on a cold webserver and code location; expect() needs it
# per call (its own default is 5 s, page.set_default_timeout only covers actions).


def test_quarantined_rows_show_as_failed_contract_check(tmp_path: Path, request) -> None:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: `make test` installs Debian's chromium "
            "(apt-get install -y chromium); `playwright install` is not used"
        )
    home = tmp_path / "home"
    generate(home, persons=PERSONS)
    env = {**os.environ, "KOMMUNELAKE_PSEUDONYM_KEY": TEST_KEY.decode()}
    for name in ("DAGSTER_HOME", "KOMMUNELAKE_HOME"):
        env.pop(name, None)
    cli = Path(sys.executable).parent / "kommunelake"
    demo = subprocess.run(
        [str(cli), "demo", "--home", str(home), "--persons", str(PERSONS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr

    # What the page must show, found independently of Dagster: from the served lake.
    con = connect(home)
    try:
        quarantined = con.sql(
            "select count(distinct (batch_id, source_row)) from quality.quarantine "
            "where dataset = ?",
            params=[DATASET],
        ).fetchone()[0]
        silver_rows = con.sql(f"select count(*) from silver.{DATASET}").fetchone()[0]
        owner = con.sql(
            "select owner from catalog.datasets where dataset = ?", params=[DATASET]
        ).fetchone()[0]
    finally:
        con.close()
    assert quarantined > 0, "the demo should quarantine some cpr_persons rows"
    owner = owner.removeprefix("team:")

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "ui.log"
    ARTIFACTS.mkdir(exist_ok=True)
    with log_path.open("wb") as log:
        ui = subprocess.Popen(
            [str(cli), "ui", "--home", str(home), "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_server(f"{base}/server_info", ui, log_path, timeout=120)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"),  # fresh user-data dir
                executable_path=str(CHROMIUM),
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 1000},
            )
            try:
                page = browser.new_page()
                _check_pages(page, base, request.node.name, quarantined, silver_rows, owner)
            finally:
                browser.close()
    finally:
        ui.send_signal(signal.SIGTERM)
        try:
            ui.wait(timeout=60)
        except subprocess.TimeoutExpired:
            ui.kill()
            ui.wait(timeout=10)
            pytest.fail(f"`kommunelake ui` ignored SIGTERM:\n{_tail(log_path)}")
    assert ui.returncode == 0, _tail(log_path)


def _check_pages(
    page: Page, base: str, name: str, quarantined: int, silver_rows: int, owner: str
) -> None:
    page.set_default_timeout(UI_TIMEOUT_MS)
    # First visit on a fresh instance: the "Join the Dagster community" dialog covers the page,
    # whenever it turns up. Playwright clicks "Skip" before any action or assertion it blocks.
    page.add_locator_handler(
        page.get_by_role("button", name="Skip", exact=True), lambda skip: skip.click()
    )
    dialog = page.get_by_text("Join the Dagster community")
    shot = ARTIFACTS / f"{name}.png"
    try:
        # The checks tab with the contract check selected (what clicking it in the list does).
        page.goto(f"{base}/assets/silver/{DATASET}?view=checks&checkDetail=contract")
        in_checks_list = page.get_by_title("contract", exact=True)
        expect(in_checks_list).to_be_visible(timeout=UI_TIMEOUT_MS)
        # "Evaluation result" and the status tag share one container in the check's detail.
        expect(
            page.locator("div").filter(has_text=re.compile(r"^Evaluation result\s*Failed$"))
        ).to_be_visible(timeout=UI_TIMEOUT_MS)
        metadata = page.get_by_role("row").filter(
            has=page.get_by_role("cell", name="rows_quarantined", exact=True)
        )
        expect(metadata.get_by_role("cell")).to_have_text(
            ["rows_quarantined", f"{quarantined}"], timeout=UI_TIMEOUT_MS
        )
        expect(dialog).to_be_hidden(timeout=UI_TIMEOUT_MS)
        page.screenshot(path=shot, full_page=True)
        print(f"screenshot: {shot}")

        shot = ARTIFACTS / f"{name}_overview.png"
        page.goto(f"{base}/assets/silver/{DATASET}")
        expect(
            page.locator("div").filter(has_text=re.compile(rf"^Row count\s*{silver_rows:,}$"))
        ).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(
            page.locator("div").filter(has_text=re.compile(rf"^Owners\s*{re.escape(owner)}$"))
        ).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(dialog).to_be_hidden(timeout=UI_TIMEOUT_MS)
    finally:
        page.screenshot(path=shot, full_page=True)  # the overview, or the page that failed
        print(f"screenshot: {shot}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_server(url: str, proc: subprocess.Popen, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"`kommunelake ui` exited with {proc.returncode}:\n{_tail(log_path)}")
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(1)
    pytest.fail(f"the webserver did not answer {url} within {timeout:.0f}s:\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
