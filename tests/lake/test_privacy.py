from __future__ import annotations

import re

import polars as pl
import pytest

from lake.errors import ConfigError
from lake.privacy import (
    Pseudonymiser,
    key_from_text,
    mask,
    pseudonym,
    pseudonymise,
    pseudonyms,
    redact,
    redacted,
    shown_name,
)
from tests.conftest import TEST_KEY


def test_same_person_same_pseudonym_across_formats() -> None:
    assert pseudonym("010190-1234", TEST_KEY, "cpr") == pseudonym("0101901234", TEST_KEY, "cpr")
    assert pseudonym("  Anne  Marie ", TEST_KEY, "name") == pseudonym(
        "anne marie", TEST_KEY, "name"
    )


def test_key_and_domain_change_the_pseudonym() -> None:
    token = pseudonym("0101901234", TEST_KEY, "cpr")
    assert token != pseudonym("0101901234", TEST_KEY + b"!", "cpr")
    assert token != pseudonym("0101901234", TEST_KEY, "name")
    assert token != pseudonym("0101901235", TEST_KEY, "cpr")


def test_pseudonyms_never_look_like_numbers() -> None:
    tokens = [pseudonym(f"{n:010d}", TEST_KEY, "cpr") for n in range(2000)]
    assert all(re.fullmatch(r"[a-p]{32}", t) for t in tokens)
    assert len(set(tokens)) == len(tokens)


def test_pseudonymise_replaces_only_identifier_columns() -> None:
    frame = pl.DataFrame({"cpr": ["0101901234", None, "0101901234"], "hours": [1.0, 2.0, 3.0]})
    out = pseudonymise(frame, {"cpr": "cpr"}, TEST_KEY)
    assert out["hours"].to_list() == [1.0, 2.0, 3.0]
    assert out["cpr"][0] == out["cpr"][2] == pseudonym("0101901234", TEST_KEY, "cpr")
    assert out["cpr"][1] is None


def test_mask_keeps_shape_not_value() -> None:
    out = pl.DataFrame({"v": ["010190-1234", "Åse Østergård"]}).select(mask(pl.col("v")))
    assert out.to_series().to_list() == ["NNNNNN-NNNN", "aaa aaaaaaaaa"]


@pytest.mark.parametrize("raw", [None, "", "short"])
def test_missing_or_short_key_is_a_clear_error(raw) -> None:
    with pytest.raises(ConfigError, match="KOMMUNELAKE_PSEUDONYM_KEY"):
        key_from_text(raw)


def test_redact_masks_cpr_shaped_numbers_only() -> None:
    text = "the file has 0101901234, Anne, 010190-1234; CVR 25052943; row 1234567890123"
    assert redact(text) == (
        "the file has NNNNNNNNNN, Anne, NNNNNN-NNNN; CVR 25052943; row 1234567890123"
    )


# A word processor or spreadsheet turns the hyphen into another dash ("150285–1234");
# a person still reads the number.
@pytest.mark.parametrize("dash", ["\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2212"])
def test_a_cpr_number_split_by_another_dash_is_masked_too(dash: str) -> None:
    text = f"ring til datter 150285{dash}1234, ordre 2024{dash}000123"
    masked = f"ring til datter NNNNNN{dash}NNNN, ordre 2024{dash}000123"
    assert redact(text) == masked
    assert pl.DataFrame({"v": [text]}).select(redacted(pl.col("v"))).item() == masked


# Written by hand, a CPR number is often split by a space ("150285 1234"), or by the
# no-break or thin space a word processor puts there.
@pytest.mark.parametrize("space", [" ", "\u00a0", "\u2009", "\u202f"])
def test_a_cpr_number_split_by_a_space_is_masked_too(space: str) -> None:
    text = f"ring til datter 150285{space}1234 om sag 2024{space}000123, 12 stk. 150285"
    masked = f"ring til datter NNNNNN{space}NNNN om sag 2024{space}000123, 12 stk. 150285"
    assert redact(text) == masked
    assert pl.DataFrame({"v": [text]}).select(redacted(pl.col("v"))).item() == masked


def test_a_file_name_is_shown_on_one_line_with_its_cpr_masked() -> None:
    name = "borger_0101901234\nINFO forged line\r\x1b[2J\tæøå.csv"
    assert shown_name(name) == "borger_NNNNNNNNNN\\nINFO forged line\\r\\x1b[2J\\tæøå.csv"


@pytest.mark.parametrize("domain", ["cpr", "name"])
@pytest.mark.parametrize("key", [TEST_KEY, b"k" * 100])  # longer than SHA-256's block
def test_bulk_pseudonyms_equal_the_single_value_ones(domain: str, key: bytes) -> None:
    values = ["010190-1234", "0101901234", " Anne  Marie ", "Åse Østergård", "", "12 34"]
    assert pseudonyms(pl.Series(values), key, domain) == [
        pseudonym(value, key, domain) for value in values
    ]


def test_the_pseudonymiser_gives_the_same_tokens_when_it_forgets_old_ones(monkeypatch) -> None:
    # Its cache of computed tokens is bounded; values it forgot are hashed again, equally.
    monkeypatch.setattr(Pseudonymiser, "MAX_KNOWN", 5)
    cprs = [f"01019{n:05d}" for n in range(12)]
    chunks = [cprs[0:4], cprs[2:9], cprs[0:12], [None, cprs[1], "010190-00001"]]
    bounded = Pseudonymiser({"cpr": "cpr"}, TEST_KEY)
    for values in chunks:
        out = bounded.apply(pl.DataFrame({"cpr": values}, schema={"cpr": pl.String}))
        expected = [None if v is None else pseudonym(v, TEST_KEY, "cpr") for v in values]
        assert out["cpr"].to_list() == expected
        assert bounded._known["cpr"].height <= 5 + len(values)


def test_redacted_masks_a_column_as_redact_masks_text() -> None:
    texts = [
        "the file has 0101901234, Anne, 010190-1234; CVR 25052943; row 1234567890123",
        "0101901234 0202901234 0303901234",  # one character apart: each is masked
        "0101901234",
        "010190-1234\n0202901234",
        "tel. 12345678; 01019012345; x0101901234y",
        "",
        None,
    ]
    out = pl.DataFrame({"v": texts}).select(redacted(pl.col("v"))).to_series().to_list()
    assert out == [None if t is None else redact(t) for t in texts]
    assert out[1] == "NNNNNNNNNN NNNNNNNNNN NNNNNNNNNN"
