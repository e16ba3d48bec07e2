"""The typed items that flow through the pipeline, gaining fields stage by stage."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

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
    summary: str = ""
    language: str | None = None
    tags: list[str] = field(default_factory=list)
    publisher: str = ""


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
    language: str | None = None
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
    locations: list[dict[str, float]] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)

    @property
    def doc_id(self) -> str:
        """Return the Elasticsearch ``_id``: a stable hash of the canonical URL."""
        return hashlib.sha256(self.canonical_url.encode("utf-8")).hexdigest()[:32]

    @property
    def content_hash(self) -> str:
        """Return a hash of the normalised body, to spot the same text under two URLs."""
        return hashlib.sha256(self.body_normalized.encode("utf-8")).hexdigest()

    def replace(self, **changes: Any) -> Article:
        """Return a copy with ``changes`` applied (stages never mutate their input)."""
        return dataclasses.replace(self, **changes)


@dataclass
class Failure:
    """A dead-letter record: what failed, where, why, and what to replay."""

    stage: str
    reason: str
    url: str
    detail: str = ""
    payload: dict[str, Any] | None = None


class FailureLog:
    """Logs failures so that the console stays readable at any failure rate: the first
    ``first`` of each (stage, reason) in full, then one line per (stage, reason) every
    ``every`` seconds with how many more there were and a few of their URLs. The
    counters (``<stage>_failed.<reason>``) and the dead-letter files keep every one.
    Per process; nothing in ``logging`` summarises repeats, hence this small class."""

    def __init__(self, first: int = 3, every: float = 30.0, examples: int = 3) -> None:
        self.first, self.every, self.examples = first, every, examples
        self.lock = threading.Lock()
        self.seen: dict[tuple[str, str], int] = {}
        self.held: dict[tuple[str, str], list[str]] = {}
        self.since: dict[tuple[str, str], float] = {}

    def log(self, failure: Failure, level: int) -> None:
        key = (failure.stage, failure.reason)
        now = time.monotonic()
        with self.lock:
            seen = self.seen[key] = self.seen.get(key, 0) + 1
            if seen <= self.first:
                summary = None
            else:
                held = self.held.setdefault(key, [])
                held.append(failure.url)
                started = self.since.setdefault(key, now)
                if now - started < self.every:
                    return
                summary, self.held[key], self.since[key] = held, [], now
        if summary is None:
            detail = failure.detail
            if failure.url not in detail:
                detail = f"{failure.url}: {detail}"
            suffix = " (more of these are summarised)" if seen == self.first else ""
            log.log(level, "%s failed (%s): %s%s", failure.stage, failure.reason, detail, suffix)
            return
        shown = ", ".join(url[:120] for url in summary[: self.examples])
        log.log(
            level,
            "%s failed (%s) %d more times (%d in all so far here), e.g. %s",
            failure.stage,
            failure.reason,
            len(summary),
            seen,
            shown,
        )


FAILURE_LOG = FailureLog()


def dead_letter(failure: Failure, level: int = logging.WARNING) -> beam.pvalue.TaggedOutput:
    """Log (summarised, see ``FailureLog``) and count ``failure`` per stage and reason and
    return it for the ``dead_letter`` output, where every stage sends what it could not
    handle."""
    Metrics.counter(f"wirestream.{failure.stage}_failed", failure.reason).inc()
    FAILURE_LOG.log(failure, level)
    return beam.pvalue.TaggedOutput("dead_letter", failure)
