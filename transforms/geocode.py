"""Places to map points, ISO country codes and one canonical name, with the offline gazetteer.

A place name is looked up diacritics-insensitively; country names and aliases win
outright ("us" is the United States), and so does a place ten times more populous than
any namesake ("Paris"). Other names are resolved by population, where a candidate in a
country the article already names (directly, or through a clear place) counts
:data:`CONTEXT_BOOST` times more, so "Tripoli" next to "Lebanon" is the Lebanese city.

Resolved places are stored under the gazetteer's name without diacritics, normalised
like entities (``us``, ``u.s.``, ``america`` -> ``united states``; ``tikrīt`` ->
``tikrit``): a country, continent or US state always, a city when its lookup is clear
(``bombay`` -> ``mumbai``, but ``victoria`` stays). Parts of a country keep their own
name (``england``, ``gaza``) while counting for its code. Unresolved places keep the
cleaned surface form. A "person" the gazetteer knows as a big place
(:data:`PERSON_PLACE_MIN_POPULATION`) is a place.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import apache_beam as beam
from apache_beam.metrics import Metrics

from transforms.article import Article
from transforms.entity_values import clean_entity
from transforms.gazetteer import (
    OWN_NAMES,
    Gazetteer,
    Place,
    fold,
    load_gazetteer,
    strip_diacritics,
)
from transforms.guard import guarded
from transforms.settings import EnrichSettings

CONTEXT_BOOST = 20
#: A lone "person" that is a country or a US state, or the own name (not an alternate) of
#: a city at least this big, is a place. Chosen on the development pages: of the moves
#: a lower bound adds, most are first names and surnames ("nancy", "george", "elizabeth");
#: alternates are worse still ("mel" is Melbourne). Checked on GUM (bench/entities.py).
PERSON_PLACE_MIN_POPULATION = 500_000


def _clear(found: list[Place]) -> bool:
    """Return whether the first candidate wins whatever the context: a country, or 10x the rest."""
    return (
        len(found) == 1
        or found[0].kind in ("country", "continent")
        or found[0].weight >= 10 * max(p.weight for p in found[1:])
    )


def resolve_places(gazetteer: Gazetteer, names: Mapping[str, int]) -> dict[str, Place]:
    """Return name -> chosen place for the names (with mention counts) the gazetteer knows."""
    candidates = {name: gazetteer.lookup(name) for name in names}
    candidates = {name: found for name, found in candidates.items() if found}
    chosen = {name: found[0] for name, found in candidates.items() if _clear(found)}
    context = {place.country for place in chosen.values() if place.country}
    for name, found in candidates.items():
        if name not in chosen:
            chosen[name] = max(
                found, key=lambda p: p.weight * (CONTEXT_BOOST if p.country in context else 1)
            )
    return chosen


def canonical_name(place: Place) -> str:
    """Return the value a resolved place is stored under: its name, normalised, no diacritics."""
    return clean_entity(strip_diacritics(place.name))


def _stored_name(gazetteer: Gazetteer, written: str, place: Place) -> str:
    if fold(written) in OWN_NAMES:
        return written
    if place.kind != "city" or _clear(gazetteer.lookup(written)):
        return canonical_name(place) or written
    return written


def _is_place(gazetteer: Gazetteer, value: str, min_population: int) -> bool:
    found = gazetteer.lookup(value)
    if not found:
        return False
    best = found[0]
    if best.kind != "city":
        return True
    return fold(best.name) == fold(value) and best.population >= min_population


def people_as_places(
    gazetteer: Gazetteer, people: Mapping[str, int], min_population: int | None = None
) -> set[str]:
    """Return the one-word "people" that are places the gazetteer knows well ("rotterdam")."""
    least = PERSON_PLACE_MIN_POPULATION if min_population is None else min_population
    return {name for name in people if " " not in name and _is_place(gazetteer, name, least)}


def geocode_article(gazetteer: Gazetteer, article: Article) -> Article:
    """Return ``article`` with ``locations`` (most mentioned first), ``countries`` and its
    places under their canonical names (and "people" that are places moved to them)."""
    entity_counts = {field: dict(values) for field, values in article.entity_counts.items()}
    people = entity_counts.get("people", {})
    moved = people_as_places(gazetteer, people)
    written = Counter(entity_counts.get("places", {}))
    for name in moved:
        written[name] += people.pop(name)
    chosen = resolve_places(gazetteer, written)
    places: Counter = Counter()
    for name, n in written.items():
        places[_stored_name(gazetteer, name, chosen[name]) if name in chosen else name] += n
    locations: list[dict[str, float]] = []
    for name in sorted(chosen, key=lambda n: (-written[n], n)):
        point = {"lat": chosen[name].lat, "lon": chosen[name].lon}
        if point not in locations:
            locations.append(point)
    countries = sorted({place.country for place in chosen.values() if place.country})
    if places:
        entity_counts["places"] = dict(places)
    if not people:
        entity_counts.pop("people", None)
    entities = {field: sorted(values) for field, values in entity_counts.items()}
    return article.replace(
        locations=locations, countries=countries, entities=entities, entity_counts=entity_counts
    )


class GeocodePlacesDoFn(beam.DoFn):
    """Article -> Article with points and countries; the gazetteer is loaded once per worker."""

    def __init__(self, settings: EnrichSettings) -> None:
        self.settings = settings
        self.located = Metrics.counter("wirestream", "articles_geocoded")

    def setup(self) -> None:
        self.gazetteer = load_gazetteer(
            self.settings.gazetteer_path, self.settings.gazetteer_min_population
        )

    @guarded("geocode", passthrough=True)
    def process(self, article: Article):
        geocoded = geocode_article(self.gazetteer, article)
        if geocoded.locations:
            self.located.inc()
        yield geocoded


class GeocodePlaces(beam.PTransform):
    """Article -> Article with ``locations`` (geo points) and ``countries`` (ISO codes)."""

    def __init__(self, settings: EnrichSettings) -> None:
        super().__init__()
        self.settings = settings

    def expand(self, articles):
        return articles | beam.ParDo(GeocodePlacesDoFn(self.settings))
