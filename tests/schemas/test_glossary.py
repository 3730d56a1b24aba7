"""The glossary file: every concept complete, mistakes named with the concept and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.glossary import GlossaryError, load_glossary, undefined_concept

COMPLETE = (
    "person:\n  term: Person\n  da: person\n  definition: >-\n    A natural person,\n"
    "    by CPR number.\n  steward: team:borgerservice\n"
)


def _glossary(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "glossary.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_concept_is_read_as_plain_text(tmp_path: Path) -> None:
    [person] = load_glossary(_glossary(tmp_path, COMPLETE)).values()
    assert person.definition == "A natural person, by CPR number."
    assert (person.term, person.da, person.nb, person.see_also) == ("Person", "person", None, ())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("person:\n  term: Person\n  steward: team:x\n", "person: definition missing"),
        (COMPLETE + "  defintion: typo\n", r"person: unknown keys \['defintion'\]"),
        (COMPLETE + "  see_also: [adress]\n", r"person: see_also names \['adress'\]"),
        (COMPLETE.replace("person:", "Person:", 1), "concept name 'Person' must be lower case"),
        ("- person\n", "expected a mapping of concept name"),
        ("person: [\n", "not valid YAML"),
    ],
)
def test_a_mistake_names_the_concept_and_what_to_fix(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(GlossaryError, match=message):
        load_glossary(_glossary(tmp_path, text))


def test_an_edited_glossary_is_read_again(tmp_path: Path) -> None:
    path = _glossary(tmp_path, COMPLETE)
    assert list(load_glossary(path)) == ["person"]
    path.write_text(COMPLETE + COMPLETE.replace("person:", "citizen:", 1), encoding="utf-8")
    assert list(load_glossary(path)) == ["person", "citizen"]


def test_an_undefined_concept_suggests_the_one_meant() -> None:
    glossary = load_glossary()
    assert undefined_concept({"a": "person", "b": None}, glossary) is None
    by_local_term = undefined_concept({"fravaer": "sygefravær"}, glossary)
    assert by_local_term and "did you mean 'sick_leave'?" in by_local_term
    by_spelling = undefined_concept({"x": "adress"}, glossary)
    assert by_spelling and "did you mean 'address'?" in by_spelling
    unknown = undefined_concept({"x": "zzz"}, glossary)
    assert unknown and "did you mean" not in unknown and "schemas/glossary.yaml" in unknown


def test_the_shipped_glossary_is_complete() -> None:
    glossary = load_glossary()
    assert {"person", "address", "municipality", "sick_leave_days"} <= set(glossary)
    assert all(c.definition and c.steward.startswith("team:") for c in glossary.values())
