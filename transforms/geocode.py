"""Places to map points and ISO country codes, with the offline gazetteer.

A place name is looked up diacritics-insensitively; country names and aliases win
outright ("us" is the United States), and so does a place ten times more populous than
any namesake ("Paris"). Other names are resolved by population, where a candidate in a
country the article already names (directly, or through a clear place) counts
:data:`CONTEXT_BOOST` times more, so "Tripoli" next to "Lebanon" is the Lebanese city.
"""

from __future__ import annotations

from collections.abc import Mapping

import apache_beam as beam
from apache_beam.metrics import Metrics

from transforms.article import Article
from transforms.gazetteer import Gazetteer, Place, load_gazetteer
from transforms.guard import guarded
from transforms.settings import EnrichSettings

CONTEXT_BOOST = 20


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


def geocode_article(gazetteer: Gazetteer, article: Article) -> Article:
    """Return ``article`` with ``locations`` (most mentioned first) and ``countries`` set."""
    counts = article.entity_counts.get("places", {})
    chosen = resolve_places(gazetteer, counts)
    locations: list[dict[str, float]] = []
    for name in sorted(chosen, key=lambda n: (-counts[n], n)):
        point = {"lat": chosen[name].lat, "lon": chosen[name].lon}
        if point not in locations:
            locations.append(point)
    countries = sorted({place.country for place in chosen.values() if place.country})
    return article.replace(locations=locations, countries=countries)


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
