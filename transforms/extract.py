"""Extract the article (title, body, authors, dates, language) from an HTML page.

newspaper4k is the primary extractor. trafilatura (precision mode, no comments)
reads the same page, and its body wins when newspaper's has fewer than
``FALLBACK_RATIO`` of its words or newspaper fails: newspaper tends to stop early
on pages split into many blocks, trafilatura rarely does (see docs/extraction.md for
the measurements behind the ratio). Metadata comes from newspaper, filled in from
trafilatura. The feed entry's publish date wins over the page's; the page's
``<link rel=canonical>`` wins over the fetched URL when it stays on the same site.
Neither extractor touches the network: newspaper's image fetching is off.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urljoin

import apache_beam as beam
import trafilatura
from apache_beam.metrics import Metrics
from newspaper import Article as NewspaperArticle
from newspaper.configuration import Configuration

from transforms.article import Article, FeedItem, Page
from transforms.dead_letters import Failure, dead_letter
from transforms.guard import guarded
from transforms.urls import canonicalize_url, source_domain

MIN_BODY_CHARS = 200
FALLBACK_RATIO = 0.95
_WORD = re.compile(r"\w+")


class ExtractError(Exception):
    """The page has no usable article (``reason`` is a metric name)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@functools.cache
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


@dataclass
class Extraction:
    """What one extractor read from a page (empty fields where it found nothing)."""

    text: str = ""
    title: str = ""
    authors: list[str] | None = None
    published_at: datetime | None = None
    language: str | None = None
    top_image: str | None = None
    canonical: str | None = None
    error: str = ""


def with_newspaper(html: str, url: str) -> Extraction:
    """Return newspaper4k's reading of ``html``; its exceptions become ``error``."""
    parsed = NewspaperArticle(url, config=_config())
    try:
        parsed.download(input_html=html)
        parsed.parse()
    except Exception as exc:  # newspaper raises many types on hostile HTML
        return Extraction(error=f"{exc.__class__.__name__}: {exc}")
    return Extraction(
        text=(parsed.text or "").strip(),
        title=(parsed.title or "").strip(),
        authors=[a.strip() for a in parsed.authors if a and a.strip()],
        published_at=_utc(parsed.publish_date),
        language=parsed.meta_lang or None,
        top_image=parsed.top_image or None,
        canonical=parsed.canonical_link or None,
    )


def with_trafilatura(html: str, url: str) -> Extraction:
    """Return trafilatura's reading of ``html`` (precision mode, comments left out)."""
    try:
        doc = trafilatura.bare_extraction(
            html, url=url, favor_precision=True, include_comments=False, with_metadata=True
        )
    except Exception as exc:  # lxml and htmldate errors on broken markup
        return Extraction(error=f"{exc.__class__.__name__}: {exc}")
    if doc is None or isinstance(doc, dict):  # a dict only when asked for (as_dict)
        return Extraction(error="no main text found")
    return Extraction(
        text=(doc.text or "").strip(),
        title=(doc.title or "").strip(),
        authors=[a.strip() for a in (doc.author or "").split(";") if a.strip()],
        published_at=_parse_day(doc.date),
        language=doc.language or None,
        top_image=doc.image or None,
        canonical=doc.url if doc.url and doc.url != url else None,
    )


def _parse_day(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value).replace(tzinfo=timezone.utc) if value else None
    except ValueError:
        return None


def word_count(text: str) -> int:
    """Return the number of word-character runs in ``text``."""
    return len(_WORD.findall(text))


def choose_body(primary: str, fallback: str, ratio: float = FALLBACK_RATIO) -> tuple[str, bool]:
    """Return the body to keep and whether it is the fallback's.

    The fallback wins when the primary has fewer than ``ratio`` of its words.
    """
    if primary and word_count(primary) >= ratio * word_count(fallback):
        return primary, False
    return (fallback, True) if fallback else (primary, False)


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
    main = with_newspaper(html, url)
    other = with_trafilatura(html, url)
    body, fell_back = choose_body(main.text, other.text)
    if len(body) < min_chars:
        why = "; ".join(e for e in (main.error, other.error) if e)
        raise ExtractError(
            "too_little_text",
            f"{url}: only {len(body)} characters of body text" + (f" ({why})" if why else ""),
        )
    canonical = choose_canonical(url, main.canonical or other.canonical)
    published = (item.published_at if item else None) or main.published_at or other.published_at
    title = main.title or other.title or (item.title if item else "")
    language = main.language or other.language or (item.language if item else None)
    return Article(
        url=canonicalize_url(url),
        canonical_url=canonical,
        source=source_domain(canonical),
        feed_url=item.feed_url if item else None,
        feed_urls=[item.feed_url] if item else [],
        title=title,
        body=body,
        fetched_at=fetched_at or datetime.now(timezone.utc),
        published_at=published,
        authors=main.authors or other.authors or [],
        language=language.lower()[:8] if language else None,
        top_image=main.top_image or other.top_image,
        tags=list(item.tags) if item else [],
        publisher=item.publisher if item else "",
        extractor="trafilatura" if fell_back else "newspaper",
    )


class ExtractArticleDoFn(beam.DoFn):
    """Page -> Article; pages without an article go to ``dead_letter``."""

    def __init__(self) -> None:
        self.extracted = Metrics.counter("wirestream", "articles_extracted")

    @guarded("extract")
    def process(self, page: Page):
        try:
            article = extract_article(page.html, page.final_url, page.fetched_at, page.item)
            article.page_digest = page.digest
        except ExtractError as exc:
            yield dead_letter(Failure("extract", exc.reason, page.url, str(exc)))
            return
        self.extracted.inc()
        Metrics.counter("wirestream.extracted_by", article.extractor).inc()
        yield article


class ExtractArticles(beam.PTransform):
    """Page -> Article, with failures on the ``dead_letter`` tag."""

    def expand(self, pages):
        return pages | beam.ParDo(ExtractArticleDoFn()).with_outputs("dead_letter", main="articles")
