"""read_ahead: the next frame is read in a thread; order, errors and early stops are kept."""

from __future__ import annotations

import threading

import polars as pl
import pytest

from connectors.formats import FormatError, read_ahead


def _frames(count: int, fail_at: int | None = None, seen: list[int] | None = None):
    for index in range(count):
        if index == fail_at:
            raise FormatError("big.csv", "cannot parse the row", "Fix it", line=index)
        if seen is not None:
            seen.append(index)
        yield pl.DataFrame({"i": [index]})


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "kommunelake-read-ahead"]


def test_frames_come_in_order() -> None:
    assert [f["i"][0] for f in read_ahead(_frames(5))] == [0, 1, 2, 3, 4]
    assert _workers() == []


def test_a_readers_error_is_raised_after_the_frames_before_it() -> None:
    got = []
    with pytest.raises(FormatError, match="line 2"):
        for frame in read_ahead(_frames(5, fail_at=2)):
            got.append(frame["i"][0])
    assert got == [0, 1]
    assert _workers() == []


def test_stopping_early_stops_the_reader() -> None:
    seen: list[int] = []
    frames = read_ahead(_frames(100, seen=seen))
    assert next(frames)["i"][0] == 0
    frames.close()
    assert _workers() == []
    assert len(seen) <= 3  # the one handed over, one queued, at most one in flight
