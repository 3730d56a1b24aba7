"""`kommunelake load --select`: a selection that is not Dagster syntax, or that matches no
asset, is a one-line error naming it; it never runs nothing and reports success."""

from __future__ import annotations

import warnings

import dagster as dg
import pytest

from lake.home import Home
from pipelines.cli import main


@pytest.fixture
def home(tmp_path, monkeypatch) -> Home:
    for name in ("KOMMUNELAKE_HOME", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KOMMUNELAKE_PSEUDONYM_KEY", "k" * 64)
    return Home(tmp_path / "home")


@pytest.mark.parametrize(
    ("select", "message"),
    [
        # A typo in a dataset's name used to run nothing and print "All checks passed."
        ("key:silver/sick_leaves+", "matches no asset"),
        ("group:nosuch", "matches no asset"),
        # A syntax error used to be reported as an internal error to report as a bug.
        ("key:silver/sick_leave+++ and", "is not a Dagster asset selection"),
    ],
)
def test_a_selection_that_selects_nothing_is_an_error(home, capsys, select, message) -> None:
    assert main(["load", "--home", str(home.root), "--select", select]) == 1

    out, err = capsys.readouterr()
    [line] = err.splitlines()
    assert line.startswith(f"kommunelake load: --select {select!r} {message}")
    assert "key:silver/sick_leave+" in line  # what a selection looks like
    assert "All checks passed." not in out and "internal error" not in err
    with dg.DagsterInstance.from_config(str(home.dagster_home)) as instance:
        assert instance.get_runs() == []  # nothing was started


def test_a_group_selection_prints_no_dagster_beta_warning(home, capsys) -> None:
    # Dagster's parser warns about a beta parameter on `group:`; the user never passed it.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        main(["load", "--home", str(home.root), "--select", "group:nosuch"])

    assert not [w for w in caught if issubclass(w.category, dg.BetaWarning)]
