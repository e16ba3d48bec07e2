"""Extract the article (title, body, authors, dates, language) from an HTML page.

The page is parsed once. What it declares about itself comes first
(:mod:`transforms.page_meta`: schema.org JSON-LD, then OpenGraph and other ``<meta>``
tags), then the body extractor's own heuristics, then the feed entry. The body comes
from the backend chosen in ``extract.backend``:

- ``auto`` (default): trafilatura (precision mode, comments left out), and newspaper4k's
  body on the few pages where trafilatura's looks cut short (``SECOND_OPINION_RATIO``);
- ``trafilatura``: trafilatura alone;
- ``newspaper``: newspaper4k, with trafilatura's body when newspaper's has fewer than
  ``FALLBACK_RATIO`` of its words or newspaper fails (the extraction before v2).

docs/extraction.md has the measurements behind the default. Titles lose the site's
name and bylines are split into names (:mod:`transforms.bylines`). The page's publish
date is its declared one, else the feed entry's, else the extractor's guess; the page's
``<link rel=canonical>`` wins over the fetched URL when it stays on the same site. The
language is read from the title and body and weighed against the declared one
(:mod:`transforms.language`).
Nothing here touches the network: newspaper's image fetching is off.
"""

from __future__ import annotations

import contextlib
import functools
import re
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Literal
from urllib.parse import urljoin

import apache_beam as beam
import trafilatura
from apache_beam.metrics import Metrics
from newspaper import Article as NewspaperArticle
from newspaper.configuration import Configuration
from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import HTMLTree
from trafilatura.utils import load_html

from transforms.article import Article, FeedItem, Page
from transforms.bylines import clean_authors, clean_title, fold
from transforms.dates import as_utc
from transforms.dead_letters import Failure, dead_letter
from transforms.guard import guarded
from transforms.language import with_language
from transforms.page_guesses import cheap_guesses, guess_authors, guess_date
from transforms.page_meta import Author, PageMeta, read_page_meta
from transforms.urls import canonicalize_url, source_domain
from transforms.walls import find_paywall, find_wall

Backend = Literal["auto", "trafilatura", "newspaper"]
#: ``auto`` asks newspaper4k for a second opinion when trafilatura's body has fewer than
#: this share of the words of resiliparse's main-content text (a cheap, high-recall
#: check). Chosen on the article-extraction pages (F1 0.974 at 0.6) and reported on
#: fundus-dev (0.964, the best of 0.5-0.7 there too) by ``bench/extraction.py``.
SECOND_OPINION_RATIO = 0.6

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
        published_at=as_utc(parsed.publish_date),
        language=parsed.meta_lang or None,
        top_image=parsed.top_image or None,
        canonical=parsed.canonical_link or None,
    )


def with_trafilatura(html, url: str, fast: bool = False) -> Extraction:
    """Return trafilatura's body of ``html`` (text or a parsed tree, which it copies):
    precision mode, comments left out, no metadata pass (:mod:`transforms.page_guesses`
    runs the parts of it a page needs); ``fast`` skips its fallback extractors."""
    try:
        doc = trafilatura.bare_extraction(
            html,
            url=url,
            favor_precision=True,
            include_comments=False,
            with_metadata=False,
            fast=fast,
        )
    except Exception as exc:  # lxml errors on broken markup
        return Extraction(error=f"{exc.__class__.__name__}: {exc}")
    if doc is None or isinstance(doc, dict):  # a dict only when asked for (as_dict)
        return Extraction(error="no main text found")
    return Extraction(text=(doc.text or "").strip())


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


def parse_page(html: str):
    """Return the page's lxml tree (trafilatura's lenient loader), or None if unparseable."""
    try:
        return load_html(html)
    except Exception:  # lxml raises on some hostile markup
        return None


def main_content_words(html: str) -> int:
    """Return the number of words resiliparse finds in the page's main content (~3 ms)."""
    try:
        tree = HTMLTree.parse(html)
        text = extract_plain_text(tree, main_content=True, alt_texts=False, links=False)
    except Exception:  # resiliparse is lenient; a failure only skips the check
        return 0
    return word_count(text)


#: ``auto`` takes newspaper4k's longer body only when it holds at least this share of the
#: words of trafilatura's: a body that cut short is a part of the whole, not another text
#: (newspaper4k sometimes reads a comment thread or a teaser list instead).
SECOND_OPINION_OVERLAP = 0.5


def continues(short: str, longer: str) -> bool:
    """Return whether ``longer`` holds most of the distinct words of ``short``."""
    words = set(_WORD.findall(short.lower()))
    if not words:
        return True
    held = words & set(_WORD.findall(longer.lower()))
    return len(held) >= SECOND_OPINION_OVERLAP * len(words)


def with_backend(backend: Backend, html: str, tree, url: str) -> tuple[Extraction, str]:
    """Return the backend's reading of the page and the name of the extractor whose body won."""
    parsed = tree if tree is not None else html
    if backend in ("trafilatura", "auto"):
        found = with_trafilatura(parsed, url)
        if backend == "trafilatura":
            return found, "trafilatura"
        if word_count(found.text) >= SECOND_OPINION_RATIO * main_content_words(html):
            return found, "trafilatura"
        second = with_newspaper(html, url)
        if not second.text or not continues(found.text, second.text):
            return found, "trafilatura"
        return replace(found, text=second.text), "newspaper"
    main = with_newspaper(html, url)
    other = with_trafilatura(parsed, url)
    body, fell_back = choose_body(main.text, other.text)
    merged = Extraction(
        text=body,
        title=main.title or other.title,
        authors=main.authors or other.authors,
        published_at=main.published_at or other.published_at,
        language=main.language or other.language,
        top_image=main.top_image or other.top_image,
        canonical=main.canonical or other.canonical,
        error="; ".join(e for e in (main.error, other.error) if e),
    )
    return merged, "trafilatura" if fell_back else "newspaper"


#: Where the title comes from. Order chosen on fundus-dev (exact titles of 28 publishers)
#: by ``bench/extraction.py``, which reports it on the snippet pages too.
TITLE_SOURCES = ("meta_title", "headline", "extractor", "html_title")


def choose_title(meta: PageMeta, heuristic: str, item: FeedItem | None, domain: str) -> str:
    """Return the title, without the site's name: the first of :data:`TITLE_SOURCES`
    (og:title and friends, JSON-LD headline, the extractor's, ``<title>``) that is also
    the page's ``<h1>``, else the first the page has, else the feed entry's.

    Pages often carry two titles (a social one in og:title, the printed one in the
    headline); the one the reader sees as the heading is the article's.
    """
    found = {
        "headline": meta.headline,
        "meta_title": meta.meta_title,
        "extractor": heuristic,
        "html_title": meta.html_title,
    }
    titles = [
        clean_title(found[source], meta.site_names, domain)
        for source in TITLE_SOURCES
        if found[source]
    ]
    headings = {fold(h) for h in meta.headings if h}
    shown = next((t for t in titles if fold(t) in headings), None)
    return shown or (titles[0] if titles else (item.title if item else ""))


def extract_article(
    html: str,
    url: str,
    fetched_at: datetime | None = None,
    item: FeedItem | None = None,
    min_chars: int = MIN_BODY_CHARS,
    backend: Backend = "auto",
) -> Article:
    """Return the article in ``html`` (served at ``url``), or raise ``ExtractError``."""
    if not html or not html.strip():
        raise ExtractError("empty_page", f"{url}: empty page")
    tree = parse_page(html)
    meta = read_page_meta(tree) if tree is not None else PageMeta()
    found, extractor = with_backend(backend, html, tree, url)
    body = found.text
    if len(body) < min_chars:
        why = f" ({found.error})" if found.error else ""
        raise ExtractError(
            "too_little_text", f"{url}: only {len(body)} characters of body text{why}"
        )
    guesses = cheap_guesses(tree, url)
    canonical = choose_canonical(url, found.canonical or guesses.canonical)
    source = source_domain(canonical)
    published = (
        meta.published_at
        or (item.published_at if item else None)
        or found.published_at
        or guess_date(tree, canonical, len(html))
    )
    authors = (
        clean_authors(meta.authors)
        or clean_authors(Author(a) for a in (item.authors if item else []))
        or clean_authors(Author(a) for a in found.authors or guesses.authors or [])
        or clean_authors(Author(a) for a in guess_authors(tree, len(html)))
    )
    declared = meta.language or found.language or (item.language if item else None)
    article = Article(
        url=canonicalize_url(url),
        canonical_url=canonical,
        source=source,
        feed_url=item.feed_url if item else None,
        feed_urls=[item.feed_url] if item else [],
        title=choose_title(meta, found.title or guesses.title, item, source),
        body=body,
        fetched_at=fetched_at or datetime.now(timezone.utc),
        published_at=published,
        authors=authors,
        language_declared=declared,
        top_image=found.top_image or guesses.top_image,
        tags=list(item.tags) if item else [],
        publisher=item.publisher if item else "",
        extractor=extractor,
    )
    return with_language(article)


#: A small article whose extraction makes trafilatura, htmldate, newspaper4k and CLD2 do
#: their one-time work (compiled patterns, loaded tables): 60-70 ms a worker.
_WARM_UP_PAGE = """<html lang="en"><head><title>Warm-up</title></head><body><article>
<h1>Council approves the harbour budget</h1><p>Published 3 March 2024. The council
approved the budget on Tuesday after a long debate about the harbour and the new ferry
terminal, which opens next year.</p><p>Officials said the plan would cost less than
expected and that work would start in the spring, with a second phase in the autumn.</p>
</article></body></html>"""


def warm_up(backend: Backend = "auto") -> None:
    """Do the extractors' one-time work now (at worker setup), not on the first page."""
    # the page is an article; a library change that disagrees must not stop a worker
    with contextlib.suppress(ExtractError):
        extract_article(_WARM_UP_PAGE, "https://warm-up.invalid/a", backend=backend)


def article_of(page: Page, backend: Backend = "auto") -> Article:
    """Return the article of a downloaded or archived ``page``, or raise ``ExtractError``;
    a wall (``transforms.walls``: archived pages were not screened at fetch) or a paywall
    stub is no article and fails with its kind as the reason."""
    wall = find_wall(page.html, page.final_url)
    if wall is None:
        try:
            article = extract_article(
                page.html, page.final_url, page.fetched_at, page.item, backend=backend
            )
        except ExtractError as exc:
            wall = find_paywall(page.html, 0) if exc.reason == "too_little_text" else None
            if wall is None:
                raise
        else:
            wall = find_paywall(page.html, len(article.body.split()))
    if wall:
        what = wall.kind.replace("_", " ")
        raise ExtractError(wall.kind, f"{page.url}: {what} ({wall.evidence})")
    article.page_digest = page.digest
    return article


class ExtractArticleDoFn(beam.DoFn):
    """Page -> Article; pages without an article go to ``dead_letter``."""

    def __init__(self, backend: Backend = "auto") -> None:
        self.backend = backend
        self.extracted = Metrics.counter("wirestream", "articles_extracted")

    def setup(self) -> None:
        warm_up(self.backend)

    @guarded("extract")
    def process(self, page: Page):
        try:
            article = article_of(page, self.backend)
        except ExtractError as exc:
            yield dead_letter(Failure("extract", exc.reason, page.url, str(exc)))
            return
        self.extracted.inc()
        Metrics.counter("wirestream.extracted_by", article.extractor).inc()
        yield article


class ExtractArticles(beam.PTransform):
    """Page -> Article, with failures on the ``dead_letter`` tag."""

    def __init__(self, backend: Backend = "auto") -> None:
        super().__init__()
        self.backend = backend

    def expand(self, pages):
        extract = ExtractArticleDoFn(self.backend)
        return pages | beam.ParDo(extract).with_outputs("dead_letter", main="articles")
