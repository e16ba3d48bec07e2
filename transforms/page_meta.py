"""What a page declares about itself: schema.org JSON-LD first, then ``<meta>`` tags.

Most news pages carry a JSON-LD ``NewsArticle`` (or ``Article``, ``ReportageNewsArticle``,
``LiveBlogPosting``, ...; alone, in a list or in an ``@graph``) with ``headline``,
``author``, ``datePublished``, ``inLanguage`` and ``publisher``; the rest have OpenGraph
(``og:title``, ``article:published_time``) or publisher-specific tags (``parsely-*``,
``sailthru.*``, ``dc.*``). extruct reads the JSON-LD blocks (leniently: comments,
trailing commas); walking the graph for the article node, resolving ``@id`` references
to authors, and reading the ``<meta>`` tags is done here, since no library exposes those
as one record.
"""

from __future__ import annotations

import html as html_lib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from apache_beam.metrics import Metrics
from dateutil import parser as date_parser
from extruct.jsonld import JsonLdExtractor

log = logging.getLogger(__name__)

#: schema.org types whose node describes the article itself.
ARTICLE_TYPES = frozenset(
    (
        "Article", "NewsArticle", "ReportageNewsArticle", "AnalysisNewsArticle",
        "OpinionNewsArticle", "BackgroundNewsArticle", "ReviewNewsArticle", "LiveBlogPosting",
        "BlogPosting", "SocialMediaPosting", "Report", "ScholarlyArticle", "TechArticle",
    )
)  # fmt: skip
ORGANIZATION_TYPES = frozenset(("Organization", "NewsMediaOrganization", "Corporation"))
_AUTHOR_META = ("author", "parsely-author", "sailthru.author", "dc.creator", "dcterms.creator")
_AUTHOR_PROPERTY = ("article:author", "og:article:author")
_DATE_META = (
    "article:published_time", "og:article:published_time", "parsely-pub-date", "sailthru.date",
    "pubdate", "publishdate", "publish-date", "date", "dc.date", "dc.date.issued",
    "dcterms.created", "dcterms.date", "datePublished",
)  # fmt: skip
_TITLE_META = ("og:title", "twitter:title", "parsely-title", "sailthru.title", "dc.title")


@dataclass
class Author:
    """A name the page gives as an author, and whether it names an organisation."""

    name: str
    organization: bool = False


@dataclass
class PageMeta:
    """The page's own metadata; empty where it declares nothing."""

    headline: str = ""  # JSON-LD headline
    meta_title: str = ""  # og:title and friends
    html_title: str = ""  # <title>
    authors: list[Author] = field(default_factory=list)
    published_at: datetime | None = None
    language: str | None = None
    site_names: list[str] = field(default_factory=list)  # og:site_name, publisher name
    headings: list[str] = field(default_factory=list)  # the page's <h1> texts


#: Declared dates before this are placeholders, not publication dates: Go's zero time
#: (``0001-01-01T00:00:00Z``, on 3 of the 129 real bench pages) and the like.
EARLIEST_DATE = datetime(1900, 1, 1, tzinfo=timezone.utc)
#: ...and so is the Unix epoch itself, and a date this far after the run.
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
FUTURE_SLACK = timedelta(days=2)


def plausible(value: datetime | None) -> datetime | None:
    """Return ``value`` if it can be a publication date (after 1900, not the Unix epoch,
    not days in the future), else None, counted as ``wirestream.implausible_dates``."""
    if value is None:
        return None
    if EARLIEST_DATE <= value != _EPOCH and value <= datetime.now(timezone.utc) + FUTURE_SLACK:
        return value
    log.debug("implausible date %s left out", value.isoformat())
    Metrics.counter("wirestream", "implausible_dates").inc()
    return None


def parse_date(value: Any) -> datetime | None:
    """Return a timezone-aware UTC datetime from a page's date string, or None (also for
    a placeholder, see :func:`plausible`)."""
    return plausible(_parse_date(value))


def _parse_date(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = date_parser.isoparse(value.strip())
    except ValueError:
        try:
            parsed = date_parser.parse(value.strip())
        except (ValueError, OverflowError):
            return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _text(value: Any) -> str:
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, str)), "")
    if isinstance(value, dict):
        value = value.get("name") or value.get("@value") or ""
    return " ".join(html_lib.unescape(value).split()) if isinstance(value, str) else ""


def _types(node: dict) -> set[str]:
    kind = node.get("@type", ())
    kinds = [kind] if isinstance(kind, str) else kind if isinstance(kind, list) else []
    return {str(k).rsplit("/", 1)[-1] for k in kinds}


def _nodes(value: Any) -> Iterator[dict]:
    if isinstance(value, list):
        for item in value:
            yield from _nodes(item)
    elif isinstance(value, dict):
        yield value
        for key in ("@graph", "mainEntity", "mainEntityOfPage", "hasPart"):
            if isinstance(value.get(key), (dict, list)):
                yield from _nodes(value[key])


def _authors(value: Any, by_id: dict[str, dict]) -> list[Author]:
    found: list[Author] = []
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, str):
            found.append(Author(_text(item)))
            continue
        if not isinstance(item, dict):
            continue
        if set(item) <= {"@id", "@type"} and item.get("@id") in by_id:
            item = by_id[item["@id"]]  # a reference to a Person node elsewhere in the graph
        name = _text(item.get("name") or item.get("byline") or item.get("alternateName"))
        if name:
            found.append(Author(name, bool(_types(item) & ORGANIZATION_TYPES)))
    return [a for a in found if a.name]


def _read_json_ld(tree, meta: PageMeta) -> None:
    try:
        items = JsonLdExtractor().extract_items(tree)
    except Exception as exc:  # one broken block must not lose the page's other metadata
        log.debug("unreadable JSON-LD: %s", exc)
        return
    nodes = [node for item in items for node in _nodes(item)]
    by_id = {n["@id"]: n for n in nodes if isinstance(n.get("@id"), str) and len(n) > 2}
    articles = [n for n in nodes if _types(n) & ARTICLE_TYPES]
    article = next((n for n in articles if n.get("headline")), articles[0] if articles else None)
    if article is None:
        return
    meta.headline = _text(article.get("headline") or article.get("name"))
    meta.authors = _authors(article.get("author") or article.get("creator"), by_id)
    meta.published_at = parse_date(article.get("datePublished") or article.get("dateCreated"))
    language = article.get("inLanguage")
    meta.language = _text(language) or None
    publisher = article.get("publisher")
    if isinstance(publisher, dict) and set(publisher) <= {"@id", "@type"}:
        publisher = by_id.get(str(publisher.get("@id")), publisher)
    if name := _text(publisher):
        meta.site_names.append(name)


def _meta_tags(tree) -> dict[str, list[str]]:
    tags: dict[str, list[str]] = {}
    for element in tree.iter("meta"):
        key = element.get("property") or element.get("name") or element.get("itemprop")
        content = element.get("content")
        if key and content and content.strip():
            tags.setdefault(key.strip().lower(), []).append(" ".join(content.split()))
    return tags


def read_page_meta(tree) -> PageMeta:
    """Return the metadata the page (a parsed lxml tree) declares about its article."""
    meta = PageMeta()
    _read_json_ld(tree, meta)
    tags = _meta_tags(tree)

    def first(keys: tuple[str, ...]) -> str:
        return next((html_lib.unescape(tags[k.lower()][0]) for k in keys if k.lower() in tags), "")

    meta.meta_title = first(_TITLE_META)
    title = tree.find(".//title")
    if title is not None and title.text:
        meta.html_title = " ".join(html_lib.unescape(title.text).split())
    meta.headings = [" ".join(h.text_content().split()) for h in tree.iter("h1")][:5]
    if site := first(("og:site_name", "application-name", "twitter:site")):
        meta.site_names.append(site.lstrip("@"))
    if not meta.authors:
        names = [
            name
            for key in (*_AUTHOR_META, *_AUTHOR_PROPERTY)
            for name in tags.get(key, [])
            if not name.startswith(("http://", "https://", "@"))
        ]
        meta.authors = [Author(name) for name in dict.fromkeys(names)]
    if meta.published_at is None:
        meta.published_at = next(
            (d for key in _DATE_META for v in tags.get(key.lower(), []) if (d := parse_date(v))),
            None,
        )
    if not meta.language:
        root = tree.getroottree().getroot()
        meta.language = root.get("lang") or first(("og:locale", "content-language")) or None
    return meta
