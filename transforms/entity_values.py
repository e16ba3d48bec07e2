"""One entity span -> the value a chart shows: trimmed, typed, or dropped as junk.

The model's spans are turned into values in the normalised form of the body
(``normalize_title``). The rules below were written against what the small English
model emits on the development pages (``../shared/bench/``: 171 suspicious values out of
4,106, listed by ``python bench/entities.py --junk``), not against hand-picked examples:

- a span with no capital letter is not a name (``mm``, ``hati2``, URLs, e-mail
  addresses, caseless scripts the English model misreads);
- a span that is only numbers, scores, dates, times or amounts (``31 - 12``,
  ``september 11 , 2001``, ``½``), a single letter (``b``, ``d.``), only function
  words (``n't``; an all-capitals acronym such as ``US`` stays) or the tail of a
  possessive (``'s order``) is dropped;
- a trailing score is trimmed (``chile 3 - 0`` -> ``chile``); a person's name also loses
  trailing numbers and anything after a possessive (``chris christie 's exit`` ->
  ``chris christie``), and a person "name" with digits left is dropped (``rav4 hybrid``);
- a span that runs across a line break stops at it (a title run into the body);
- a "person" ending in a landform (``kestrel falls``) is a place, one ending in a street
  word (``mill lane``) a facility.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import yaml

from transforms.language import stop_words
from transforms.normalize import normalize_title

#: spaCy label -> document field. Numeric labels (DATE, MONEY, CARDINAL, ...) are left out.
ENTITY_FIELDS: dict[str, str] = {
    "PERSON": "people",
    "ORG": "organizations",
    "GPE": "places",
    "LOC": "places",
    "NORP": "groups",
    "EVENT": "events",
    "FAC": "other",
    "PRODUCT": "other",
    "WORK_OF_ART": "other",
    "LAW": "other",
    "LANGUAGE": "other",
}
ENTITY_TYPES = tuple(dict.fromkeys(ENTITY_FIELDS.values()))
#: Labels of other languages' models (WikiNER: PER, LOC, ORG, MISC) -> the labels above.
LABEL_ALIASES: dict[str, str] = {"PER": "PERSON", "MISC": "PRODUCT"}

#: Titles dropped from the front of a person's name, in normalised form, longest first.
TITLES: tuple[tuple[str, ...], ...] = tuple(
    sorted(
        (
            tuple(title.split())
            for title in (
                "prime minister", "deputy prime minister", "foreign minister", "minister",
                "president", "vice president", "vice-president", "chancellor", "premier",
                "secretary", "secretary of state", "secretary-general", "secretary general",
                "defense secretary", "defence secretary", "general", "gen.", "lt.", "col.",
                "maj.", "capt.", "sgt.", "adm.", "cmdr.", "commander", "mr.", "mrs.", "ms.",
                "mr", "mrs", "ms", "dr.", "dr", "prof.", "professor", "sen.", "senator",
                "rep.", "gov.", "governor", "mayor", "judge", "justice", "king", "queen",
                "prince", "princess", "sheikh", "sheik", "ayatollah", "pope", "sir", "lord",
                "lady", "rev.", "reverend", "pres.", "chairman", "chief", "ceo", "leader",
            )
        ),
        key=len,
        reverse=True,
    )
)  # fmt: skip

#: Last words that make a "person" span a place or a facility (``kestrel falls``).
LANDFORMS = frozenset(
    (
        "falls", "river", "lake", "bay", "valley", "county", "city", "island",
        "islands", "mountains", "beach", "harbor", "harbour", "heights", "springs", "creek",
        "canyon", "peninsula", "province", "district", "strait", "gulf", "sea", "ocean",
        "estuary",
    )
)  # fmt: skip
STREETS = frozenset(
    (
        "lane", "road", "street", "avenue", "parkway", "boulevard", "drive", "quay",
        "square",
    )
)  # fmt: skip
_CALENDAR = frozenset(
    (
        "january", "february", "march", "april", "may", "june", "july", "august",
        "september", "october", "november", "december", "jan", "feb", "mar", "apr",
        "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "today",
        "yesterday", "tomorrow", "tonight", "morning", "evening", "night", "am", "pm",
        "a.m.", "p.m.", "gmt", "utc", "bst", "edt", "est", "pst",
    )
)  # fmt: skip
_AMOUNT_WORDS = frozenset(
    (
        "million", "billion", "trillion", "thousand", "hundred", "percent", "per", "cent",
    )
)  # fmt: skip
_NUMBER_RE = re.compile(r"^[-+]?[$£€¥]?[\d½¼¾][\d.,:/½¼¾]*(?:st|nd|rd|th|s|m|bn|k|%)?$")
_SPACED_DASH_RE = re.compile(r"\s+[-\u2012-\u2015]+\s+")
_CLITICS = ("'s", "'")


def _is_number(token: str) -> bool:
    return bool(_NUMBER_RE.match(token)) or token in ("$", "£", "€", "¥", "%")


def _is_junk(tokens: list[str], surface: str, language: str | None = None) -> bool:
    """Return whether a cleaned span is not a name at all."""
    if not any(ch.isalpha() for token in tokens for ch in token):
        return True  # numbers, scores, symbols
    if len(tokens) == 1 and len(tokens[0].rstrip(".")) == 1:
        return True  # a single letter
    if all(_is_number(t) or t in _CALENDAR or t in _AMOUNT_WORDS or t in ",-/" for t in tokens):
        return True  # a date, a time, an amount
    acronym = surface.isupper() and len(surface.strip(".")) >= 2
    stop = stop_words(language)
    return not acronym and all(t in stop or t in _CLITICS for t in tokens)


def _strip_title(tokens: list[str]) -> list[str]:
    stripped = True
    while stripped:
        stripped = False
        for title in TITLES:
            if len(tokens) > len(title) and tuple(tokens[: len(title)]) == title:
                tokens = tokens[len(title) :]
                stripped = True
                break
    return tokens


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if any(ch.isalnum() for ch in line):
            return line
    return ""


@functools.lru_cache(maxsize=65_536)  # names repeat across documents; normalising costs
def clean_entity(text: str, label: str = "", language: str | None = None) -> str:
    """Return the entity text normalised as the body of an article in ``language``, or
    ``""`` when the span is not a name.

    Drops a possessive, edge punctuation and a leading "the"; a person's name also loses
    its titles ("Prime Minister", "Gen.", "Mr."); a span the model ran on past a spaced
    dash ("Saddam Hussein - earlier") or a line break stops there.
    """
    surface = _SPACED_DASH_RE.split(_first_line(text), maxsplit=1)[0].strip()
    if not any(ch.isupper() for ch in surface):
        return ""
    tokens = normalize_title(surface, language).split()
    if label == "PERSON" and "'s" in tokens[1:]:
        tokens = tokens[: tokens.index("'s", 1)]
    while tokens and (tokens[-1] in _CLITICS or not any(ch.isalnum() for ch in tokens[-1])):
        tokens.pop()
    while tokens and not any(ch.isalnum() for ch in tokens[0]):
        tokens.pop(0)
    if tokens and tokens[0] in _CLITICS:
        return ""  # the tail of a possessive: "'s order"
    if len(tokens) > 1 and tokens[0] == "the":
        tokens.pop(0)
    if len(tokens) > 3 and tokens[-2] == "-" and _is_number(tokens[-1]) and _is_number(tokens[-3]):
        tokens = tokens[:-3]  # a score after a name: "chile 3 - 0"
    if label == "PERSON":
        tokens = _strip_title(tokens)
        while len(tokens) > 1 and _is_number(tokens[-1]):
            tokens.pop()
        if any(ch.isdigit() for token in tokens for ch in token):
            return ""
    if not tokens or _is_junk(tokens, surface, language):
        return ""
    return " ".join(tokens)


def field_of(value: str, label: str) -> str:
    """Return the document field for a cleaned ``value`` the model labelled ``label``."""
    field = ENTITY_FIELDS.get(label, "")
    if field == "people" and " " in value:
        last = value.rsplit(" ", 1)[1]
        if last in LANDFORMS:
            return "places"
        if last in STREETS:
            return "other"
    return field


def default_aliases_path() -> Path:
    """Return the shipped alias table, ``configs/entities/aliases.yaml``."""
    return Path(__file__).resolve().parents[1] / "configs" / "entities" / "aliases.yaml"


def load_aliases(path: str | Path | None = None) -> dict[str, dict[str, str]]:
    """Return field -> alias value -> canonical value from an alias table (YAML).

    The file maps each field to ``canonical name: [aliases]``; names are normalised
    here like entity values, so the file can be written in ordinary case.
    """
    path = Path(path) if path else default_aliases_path()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read the entity alias table: {exc}") from None
    table: dict[str, dict[str, str]] = {}
    for field, entries in data.items():
        if field not in ENTITY_TYPES or not isinstance(entries, dict):
            fields = ", ".join(ENTITY_TYPES)
            raise ValueError(f"{path}: {field!r} is not an entity field ({fields})")
        aliases = table.setdefault(field, {})
        for canonical, names in entries.items():
            target = clean_entity(str(canonical))
            for name in [canonical, *(names or [])]:
                if alias := clean_entity(str(name)):
                    aliases[alias] = target
    return table
