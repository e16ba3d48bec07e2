"""Entities from the real spaCy model, typed and normalised like the body."""

from datetime import datetime, timezone

import pytest

from pipeline.config import EnrichSettings
from transforms.article import Article
from transforms.enrich import clean_entity, load_model, tag_entities


@pytest.fixture(scope="module")
def nlp():
    return load_model(EnrichSettings().spacy_model)


def _article(title: str, body: str) -> Article:
    return Article(
        url="u",
        canonical_url="u",
        source="s",
        feed_url=None,
        title=title,
        body=body,
        fetched_at=datetime.now(timezone.utc),
    )


def test_entities_are_typed_and_normalised(nlp):
    body = (
        "Iraqi Prime Minister Haider al-Abadi met Qasem Soleimani in Tikrit on Saturday, "
        "Reuters reported. The U.S.-led coalition said ISIS fighters had fled towards Baghdad. "
        "Shiite militias were seen near the city."
    )
    (tagged,) = tag_entities(nlp, [_article("Talks in Tikrit", body)], max_chars=10_000)
    ents = tagged.entities
    assert "haider al-abadi" in ents["people"]
    assert "qasem soleimani" in ents["people"]
    assert {"tikrit", "baghdad"} <= set(ents["places"])
    assert "reuters" in ents["organizations"]
    assert "iraqi" in ents["groups"]
    assert tagged.entity_counts["places"]["tikrit"] == 2  # title and body
    for values in ents.values():
        assert all(v == v.lower() and v.strip() == v for v in values)


def test_numeric_labels_are_left_out(nlp):
    (tagged,) = tag_entities(
        nlp,
        [_article("", "On Monday 5 March 2026, $20,000 was paid to 300 people.")],
        max_chars=1000,
    )
    assert not tagged.entities.get("other")
    assert set(tagged.entities) <= {
        "people",
        "organizations",
        "places",
        "groups",
        "events",
        "other",
    }


def test_clean_entity_drops_possessive():
    assert clean_entity("Saddam Hussein's") == "saddam hussein"
    assert clean_entity("the U.S.-led") == "the u.s. - led"


def test_unknown_model_is_a_clear_error():
    with pytest.raises(RuntimeError, match="not installed"):
        load_model("no_such_model_xyz")
