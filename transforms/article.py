"""The typed items that flow through the pipeline, gaining fields stage by stage."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

log = logging.getLogger(__name__)


def text_digest(text: str) -> str:
    """Return a short stable hash of ``text`` (a page's HTML or a text file's contents)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass
class FeedItem:
    """One entry read from a feed: what the fetch stage needs to download the page."""

    url: str
    feed_url: str
    title: str = ""
    published_at: datetime | None = None
    language: str | None = None
    tags: list[str] = field(default_factory=list)
    publisher: str = ""
    authors: list[str] = field(default_factory=list)  # the feed's (or sidecar's) byline


@dataclass
class Page:
    """A downloaded HTML page, decoded to text."""

    url: str
    final_url: str
    html: str
    fetched_at: datetime
    item: FeedItem

    @functools.cached_property
    def digest(self) -> str:
        """Return a hash of the page's text: a re-run skips a page indexed with this hash
        (computed once, for the resume lookup and the extracted article)."""
        return text_digest(self.html)


@dataclass
class Article:
    """An article: extracted, then normalised, then enriched, then indexed."""

    url: str
    canonical_url: str
    source: str
    feed_url: str | None
    title: str
    body: str
    fetched_at: datetime
    published_at: datetime | None = None
    authors: list[str] = field(default_factory=list)
    language: str | None = None  # ISO 639-1, from the text and the declaration (language.py)
    language_declared: str | None = None  # what the page, feed or sidecar said
    language_confidence: float | None = None  # share of the text in ``language``
    top_image: str | None = None
    tags: list[str] = field(default_factory=list)
    publisher: str = ""
    feed_urls: list[str] = field(default_factory=list)  # every feed that listed it
    extractor: str = ""  # which extractor's body won (newspaper or trafilatura)
    page_digest: str = ""  # Page.digest of the page it came from (resume skips it)
    title_normalized: str = ""
    body_normalized: str = ""
    word_count: int = 0
    body_truncated: bool = False  # the body was cut at ``max_body_chars``
    entities: dict[str, list[str]] = field(default_factory=dict)
    entity_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    entities_model: str | None = None  # the spaCy model that tagged it
    entities_skipped: str | None = None  # why none did: no_model, unknown_language
    locations: list[dict[str, float]] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)
    story_id: str | None = None  # the first article of its story (transforms/story_clustering.py)
    duplicate_of: str | None = None  # the earliest article it (nearly) copies
    copy_group: str | None = None  # the root of its copies: duplicate_of, else its own id

    @property
    def doc_id(self) -> str:
        """Return the Elasticsearch ``_id``: a stable hash of the canonical URL."""
        return hashlib.sha256(self.canonical_url.encode("utf-8")).hexdigest()[:32]

    @property
    def content_hash(self) -> str:
        """Return a hash of the normalised body, to spot the same text under two URLs."""
        return hashlib.sha256(self.body_normalized.encode("utf-8")).hexdigest()

    @property
    def story_time(self) -> datetime:
        """Return the time stories order it by: its publish date (never after its fetch
        time: a date in the future would close every open story), else its fetch time."""
        if self.published_at is None:
            return self.fetched_at
        return min(self.published_at, self.fetched_at)

    def replace(self, **changes: Any) -> Article:
        """Return a copy with ``changes`` applied (stages never mutate their input)."""
        return dataclasses.replace(self, **changes)
