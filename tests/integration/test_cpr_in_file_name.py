"""A delivery named after a citizen's CPR number (per-citizen exports often are): the clear
number stays in the drop folder and landing, and nowhere else a load writes or prints."""

from __future__ import annotations

import logging

import polars as pl
import pytest

from lake.home import Home
from lake.quality import runs
from pipelines.cli import main
from tests.helpers import files_holding

pytestmark = pytest.mark.integration

# Synthetic CPR numbers with a valid date part (as the demo makes them), one per delivery.
LOADED_CPR, REJECTED_CPR = "2512894321", "1703881234"


def _string_values(home: Home) -> dict[str, set[str]]:
    """Every string value of every Delta table outside landing, by table and column."""
    values = {}
    for log in home.lake.rglob("_delta_log"):
        table = log.parent
        if home.landing in table.parents or table == home.landing:
            continue
        frame = pl.read_delta(str(table))
        for column in frame.select(pl.col(pl.String)).columns:
            name = f"{table.relative_to(home.lake)}.{column}"
            values[name] = set(frame.get_column(column).drop_nulls().to_list())
    return values


def test_a_cpr_in_a_file_name_stays_in_the_drop_folder_and_landing(
    tmp_path, monkeypatch, capsys, caplog
) -> None:
    for name in ("KOMMUNELAKE_HOME", "KOMMUNELAKE_PSEUDONYM_KEY", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)
    home = Home(tmp_path / "home")
    assert main(["demo", "--home", str(home.root), "--persons", "200"]) == 0
    folder = home.drop / "cpr_persons"
    [export] = folder.glob("*.csv")
    lines = export.read_bytes().splitlines(keepends=True)
    export.unlink()
    # One delivery that loads (a row fewer, so new bytes) and one rejected (renamed header).
    (folder / f"borger_{LOADED_CPR}.csv").write_bytes(b"".join(lines[:-1]))
    broken = b"".join(lines).replace(b"PNR;", b"PERSONNR;", 1)
    (folder / f"borger_{REJECTED_CPR[:6]}-{REJECTED_CPR[6:]}.csv").write_bytes(broken)
    capsys.readouterr()

    with caplog.at_level(logging.DEBUG):
        main(["load", "--home", str(home.root), "--select", "key:silver/cpr_persons+"])
    out, err = capsys.readouterr()

    statuses = runs(home, "cpr_persons")["status"].to_list()
    assert statuses[-2:] == ["rejected", "loaded"]
    assert (folder / "rejected" / f"borger_{REJECTED_CPR[:6]}-{REJECTED_CPR[6:]}.csv").exists()
    clear = {LOADED_CPR, REJECTED_CPR, f"{REJECTED_CPR[:6]}-{REJECTED_CPR[6:]}"}

    for where, text in (("CLI output", out + err), ("log records", caplog.text)):
        assert not [c for c in clear if c in text], f"clear CPR in the {where}"
    for column, values in _string_values(home).items():
        assert not [v for v in values if any(c in v for c in clear)], f"{column} holds it"
    # Everything else the home holds outside the sender's folders and landing: Delta logs
    # (commit metadata, statistics), the serving file, the Dagster instance (event log, run
    # tags, compute logs), caches.
    outside = [
        p
        for p in home.root.rglob("*")
        if p.is_file()
        and home.drop not in p.parents
        and home.landing not in p.parents
        and p.suffix != ".parquet"  # compressed: read as tables above
    ]
    assert len(outside) > 50
    leaked = files_holding(outside, clear)
    assert not leaked, f"clear CPR numbers in {sorted(map(str, leaked))}"
    assert "borger_NNNNNNNNNN.csv" in out  # the summary names the file, masked
