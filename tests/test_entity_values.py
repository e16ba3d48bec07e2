"""Span -> value rules: junk the model really emits is dropped or trimmed, names are kept."""

from __future__ import annotations

import pytest

from transforms.entity_values import clean_entity, default_aliases_path, field_of, load_aliases


@pytest.mark.parametrize(
    ("text", "label"),
    [
        # Each of these was emitted by the model on the development pages or the demo site.
        ("31-12", "ORG"),  # a score
        ("½", "PERSON"),
        ("§", "GPE"),
        ("835 0", "PRODUCT"),
        ("3.0", "PRODUCT"),
        ("the 2008", "EVENT"),
        ("September 11, 2001", "EVENT"),  # a date
        ("Monday", "ORG"),
        ("D.", "NORP"),  # a single letter
        ("B+", "PERSON"),
        ("n't", "GPE"),  # function words only
        ("’s Order", "PERSON"),
        ("mm", "PERSON"),  # no capital letter: not a name
        ("hati2", "ORG"),
        ("thekian1@entermedia.co.kr", "ORG"),
        ("https://www.klook.com/activity/9596-the-palace-tale/", "PERSON"),
        ("он", "ORG"),
        ("RAV4 Hybrid", "PERSON"),  # a "person" with digits
    ],
)
def test_junk_spans_are_dropped(text, label):
    assert clean_entity(text, label) == ""


@pytest.mark.parametrize(
    ("text", "label", "expected"),
    [
        ("Uchiyama 6-2", "PERSON", "uchiyama"),  # a score after a name
        ("Chile 3-0", "GPE", "chile"),
        ("National League 5-3", "ORG", "national league"),
        ("Ali 25.000", "PERSON", "ali"),  # a person's name loses trailing numbers
        ("Thunderbolt 3", "PERSON", "thunderbolt"),
        ("Chris Christie’s Exit", "PERSON", "chris christie"),  # a person's possessive
        ("Jeff Bezos’s Blue Origin", "PERSON", "jeff bezos"),
        ("Dell eGift Card\n\nOne of Dell's", "ORG", "dell egift card"),  # a line break
        # Names that look like junk but are not:
        ("US", "GPE", "us"),  # an acronym of stop-word letters
        ("WHO", "ORG", "who"),
        ("Xi", "PERSON", "xi"),
        ("Interstate 35", "FAC", "interstate 35"),
        ("Article 5", "LAW", "article 5"),
        ("the People’s Liberation Army", "ORG", "people 's liberation army"),
        ("Martha’s Vineyard", "GPE", "martha 's vineyard"),
        ("Black Friday", "EVENT", "black friday"),
        ("777X", "PRODUCT", "777x"),
    ],
)
def test_spans_are_trimmed_to_the_name(text, label, expected):
    assert clean_entity(text, label) == expected


@pytest.mark.parametrize(
    ("value", "label", "field"),
    [
        ("kestrel falls", "PERSON", "places"),
        ("wen valley", "PERSON", "places"),
        ("mill lane", "PERSON", "other"),
        ("rhys bowen", "PERSON", "people"),
        ("falls", "PERSON", "people"),  # one word: no evidence
        ("niagara falls", "GPE", "places"),
        ("lake county", "ORG", "organizations"),  # only "people" are re-typed
    ],
)
def test_field_of_retypes_people_that_are_landforms_or_streets(value, label, field):
    assert field_of(value, label) == field


def test_shipped_alias_table_maps_short_forms_to_one_name():
    aliases = load_aliases()["organizations"]
    assert aliases["un"] == aliases["u.n."] == aliases["united nations"] == "united nations"
    assert aliases["eu"] == "european union"
    assert aliases["ap"] == aliases["associated press"] == "associated press"
    assert "pa" not in aliases  # ambiguous forms stay out
    assert default_aliases_path().parts[-3:] == ("configs", "entities", "aliases.yaml")


def test_alias_table_errors_name_the_file(tmp_path):
    bad = tmp_path / "aliases.yaml"
    bad.write_text("companies:\n  Acme: [ACME]\n")
    with pytest.raises(ValueError, match=r"aliases.yaml: 'companies' is not an entity field"):
        load_aliases(bad)
    with pytest.raises(ValueError, match="cannot read"):
        load_aliases(tmp_path / "missing.yaml")
    own = tmp_path / "own.yaml"
    own.write_text("people:\n  Barack Obama: [Obama, President Obama]\n")
    assert load_aliases(own) == {
        "people": {"barack obama": "barack obama", "obama": "barack obama",
                   "president obama": "barack obama"}
    }  # fmt: skip
