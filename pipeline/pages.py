"""One page at a time: the pipeline's plain functions applied to saved HTML files.

``wirestream extract`` uses this to debug a page; the extraction benchmark uses it
to score one.
"""

from __future__ import annotations

import gzip
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from transforms.analysis import SEARCH_FIELD
from transforms.article import Article
from transforms.extract import Backend, ExtractError, extract_article
from transforms.fetch import decode_html
from transforms.index.documents import to_document
from transforms.normalize import normalize_article
from transforms.settings import EnrichSettings


def read_page(path: str) -> bytes:
    """Return the bytes of ``path`` ('-' is stdin), gunzipped if compressed."""
    data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


class Enrichment:
    """The entity stage's alias table and gazetteer, loaded once for many pages (its models
    load on the first page in their language)."""

    def __init__(self, settings: EnrichSettings) -> None:
        from transforms.enrich import check_models
        from transforms.entity_values import load_aliases
        from transforms.gazetteer import load_gazetteer

        check_models(settings.models)
        self.settings = settings
        self.aliases = load_aliases(settings.aliases_file)
        self.gazetteer = (
            load_gazetteer(settings.gazetteer_path, settings.gazetteer_min_population)
            if settings.geocode
            else None
        )

    def apply(self, article: Article) -> Article:
        """Return ``article`` tagged (and geocoded) as the pipeline's entity stage does."""
        (article,) = self.apply_all([article])
        return article

    def apply_all(self, articles: list[Article]) -> list[Article]:
        """Return ``articles`` tagged by the model of each one's language (and geocoded)."""
        from transforms.enrich import tag_by_language
        from transforms.geocode import geocode_article

        tagged = tag_by_language(articles, self.settings.models, self.settings, self.aliases)
        if self.gazetteer is None:
            return list(tagged)
        return [geocode_article(self.gazetteer, a) for a in tagged]


def process_html(
    html: str, url: str, enrichment: Enrichment | None = None, backend: Backend = "auto"
) -> Article:
    """Return the extracted, normalised (and, with ``enrichment``, tagged and geocoded)
    article, by the pipeline's own steps."""
    article = normalize_article(extract_article(html, url, backend=backend))
    return enrichment.apply(article) if enrichment else article


def to_record(article: Article) -> dict[str, Any]:
    """Return what ``wirestream extract`` prints: the document the index gets, with its id
    (less its ``search`` copy of the title and body)."""
    document = to_document(article)
    document.pop(SEARCH_FIELD, None)
    return {"_id": article.doc_id, **document}


def extract_pages(
    paths: list[str],
    urls: list[str],
    with_entities: bool = True,
    settings: EnrichSettings | None = None,
    backend: Backend = "auto",
) -> Iterator[dict[str, Any]]:
    """Yield one record per page; a page without an article yields its error."""
    settings = settings or EnrichSettings()
    enrichment = Enrichment(settings) if with_entities and settings.enabled else None
    for index, path in enumerate(paths):
        url = urls[index] if index < len(urls) else f"file://{Path(path).resolve()}"
        html = decode_html(read_page(path))
        try:
            yield to_record(process_html(html, url, enrichment, backend))
        except ExtractError as exc:
            yield {"url": url, "error": exc.reason, "detail": str(exc)}
