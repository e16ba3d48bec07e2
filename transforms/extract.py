"""Extract the article (title, body, authors, dates, language) from an HTML page.

newspaper4k does the extraction; this module only maps its result onto our
``Article`` and decides which date and URL win: the feed entry's publish date
first, then the page's metadata; the page's ``<link rel=canonical>`` when it
stays on the same site, else the fetched URL.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from urllib.parse import urljoin

import apache_beam as beam
from apache_beam.metrics import Metrics
from newspaper import Article as NewspaperArticle
from newspaper.configuration import Configuration

from transforms.article import Article, Failure, FeedItem, Page
from transforms.urls import canonicalize_url, source_domain

log = logging.getLogger(__name__)

MIN_BODY_CHARS = 200


class ExtractError(Exception):
    """The page has no usable article (``reason`` is a metric name)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _config() -> Configuration:
    config = Configuration()
    config.fetch_images = False
    config.memorize_articles = False
    config.disable_category_cache = True
    return config


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return (
        value.replace(tzinfo=timezone.utc)
        if value.tzinfo is None
        else value.astimezone(timezone.utc)
    )


def choose_canonical(page_url: str, declared: str | None) -> str:
    """Return the canonical URL: the page's declared one if on the same site, else the page's."""
    if declared:
        candidate = canonicalize_url(urljoin(page_url, declared))
        if source_domain(candidate) == source_domain(page_url):
            return candidate
    return canonicalize_url(page_url)


def extract_article(
    html: str,
    url: str,
    fetched_at: datetime | None = None,
    item: FeedItem | None = None,
    min_chars: int = MIN_BODY_CHARS,
) -> Article:
    """Return the article in ``html`` (served at ``url``), or raise ``ExtractError``."""
    if not html or not html.strip():
        raise ExtractError("empty_page", f"{url}: empty page")
    parsed = NewspaperArticle(url, config=_config())
    try:
        parsed.download(input_html=html)
        parsed.parse()
    except Exception as exc:  # newspaper raises many types on hostile HTML
        raise ExtractError("parse_error", f"{url}: {exc.__class__.__name__}: {exc}") from None
    body = (parsed.text or "").strip()
    if len(body) < min_chars:
        raise ExtractError("too_little_text", f"{url}: only {len(body)} characters of body text")
    canonical = choose_canonical(url, parsed.canonical_link)
    published = (item.published_at if item else None) or _utc(parsed.publish_date)
    title = (parsed.title or (item.title if item else "") or "").strip()
    language = parsed.meta_lang or (item.language if item else None) or None
    return Article(
        url=canonicalize_url(url),
        canonical_url=canonical,
        source=source_domain(canonical),
        feed_url=item.feed_url if item else None,
        title=title,
        body=body,
        fetched_at=fetched_at or datetime.now(timezone.utc),
        published_at=published,
        authors=[a.strip() for a in parsed.authors if a and a.strip()],
        language=language.lower()[:8] if language else None,
        top_image=parsed.top_image or None,
        tags=list(item.tags) if item else [],
        publisher=item.publisher if item else "",
    )


class ExtractArticleDoFn(beam.DoFn):
    """Page -> Article; pages without an article go to ``dead_letter``."""

    def __init__(self) -> None:
        self.extracted = Metrics.counter("wirestream", "articles_extracted")
        self.failed = Metrics.counter("wirestream", "extract_failed")

    def process(self, page: Page):
        try:
            article = extract_article(page.html, page.final_url, page.fetched_at, page.item)
        except ExtractError as exc:
            self.failed.inc()
            Metrics.counter("wirestream.extract_failed", exc.reason).inc()
            log.warning("extract failed (%s): %s", exc.reason, exc)
            yield beam.pvalue.TaggedOutput(
                "dead_letter", Failure("extract", exc.reason, page.url, str(exc))
            )
            return
        self.extracted.inc()
        yield article


class ExtractArticles(beam.PTransform):
    """Page -> Article, with failures on the ``dead_letter`` tag."""

    def expand(self, pages):
        return pages | beam.ParDo(ExtractArticleDoFn()).with_outputs("dead_letter", main="articles")
