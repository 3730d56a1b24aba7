from __future__ import annotations

from pathlib import Path

import pytest

from lake.home import Home

# ../shared/fixtures/real beside the repository: real responses from public services.
REAL_FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "real"
TEST_KEY = b"test-key-" + b"x" * 32


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "home")


@pytest.fixture
def real_fixtures() -> Path:
    if not REAL_FIXTURES.is_dir():
        pytest.fail(f"real fixtures missing at {REAL_FIXTURES}: shared/ must sit beside the repo")
    return REAL_FIXTURES
