"""One article, one document, however many feeds list it.

``DropSeenItems`` (keyed by item URL) passes an item the first time each feed lists
it and drops repeats. ``MergeFeeds`` (keyed by canonical URL, after extraction)
remembers every feed that brought an article and its first publish date, and emits
the article with all of them. Writes are whole-document ``index`` ops keyed by the
canonical URL and the local Elasticsearch has no scripting, so the union has to be
made here: a second feed's copy overwrites the first with both feeds recorded, and
keeps the first date so it lands in the same monthly index. Both states expire after
the dedupe TTL.
"""

from __future__ import annotations

import json
from datetime import datetime

import apache_beam as beam
from apache_beam.coders import StrUtf8Coder
from apache_beam.metrics import Metrics
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.utils.timestamp import Duration

from transforms.article import Article, FeedItem


def merge_feeds(article: Article, state: dict) -> tuple[Article, dict]:
    """Return the article carrying every feed in ``state`` plus its own, and the new state."""
    feeds = list(state.get("feeds", []))
    for url in article.feed_urls or ([article.feed_url] if article.feed_url else []):
        if url not in feeds:
            feeds.append(url)
    # The first copy's date (even none) decides the monthly index, so keep it.
    if "published_at" in state:
        first = state["published_at"]
        published = datetime.fromisoformat(first) if first else None
    else:
        published = article.published_at
    merged = article.replace(
        feed_urls=feeds, feed_url=feeds[0] if feeds else None, published_at=published
    )
    new_state = {
        "feeds": feeds,
        "published_at": published.isoformat() if published else None,
    }
    return merged, new_state


class DropSeenItemsDoFn(beam.DoFn):
    """Emit an item once per (URL, feed); forget the URL ``ttl_seconds`` after it was seen."""

    FEEDS = ReadModifyWriteStateSpec("feeds", StrUtf8Coder())
    EXPIRY = TimerSpec("expiry", TimeDomain.WATERMARK)

    def __init__(self, ttl_seconds: float) -> None:
        self.ttl_seconds = ttl_seconds
        self.new = Metrics.counter("wirestream", "items_new")
        self.other_feed = Metrics.counter("wirestream", "items_from_another_feed")
        self.duplicate = Metrics.counter("wirestream", "items_duplicate")

    def process(
        self,
        element: tuple[str, FeedItem],
        timestamp=beam.DoFn.TimestampParam,
        feeds_state=beam.DoFn.StateParam(FEEDS),
        expiry=beam.DoFn.TimerParam(EXPIRY),
    ):
        _, item = element
        feeds = json.loads(feeds_state.read() or "[]")
        if item.feed_url in feeds:
            self.duplicate.inc()
            return
        if feeds:
            self.other_feed.inc()
        else:
            self.new.inc()
            expiry.set(timestamp + Duration(self.ttl_seconds))
        feeds_state.write(json.dumps([*feeds, item.feed_url]))
        yield item

    @on_timer(EXPIRY)
    def forget(self, feeds_state=beam.DoFn.StateParam(FEEDS)):
        feeds_state.clear()


class DropSeenItems(beam.PTransform):
    """FeedItem -> FeedItem, dropping a URL a feed already listed within the TTL."""

    def __init__(self, ttl_seconds: float) -> None:
        super().__init__()
        self.ttl_seconds = ttl_seconds

    def expand(self, items):
        return (
            items
            | "KeyByUrl" >> beam.Map(lambda item: (item.url, item))
            | "DropSeen" >> beam.ParDo(DropSeenItemsDoFn(self.ttl_seconds))
        )


class MergeFeedsDoFn(beam.DoFn):
    """(canonical URL, Article) -> the Article with every feed that listed it so far."""

    SEEN = ReadModifyWriteStateSpec("seen", StrUtf8Coder())
    EXPIRY = TimerSpec("expiry", TimeDomain.WATERMARK)

    def __init__(self, ttl_seconds: float) -> None:
        self.ttl_seconds = ttl_seconds
        self.merged = Metrics.counter("wirestream", "articles_in_several_feeds")

    def process(
        self,
        element: tuple[str, Article],
        timestamp=beam.DoFn.TimestampParam,
        seen=beam.DoFn.StateParam(SEEN),
        expiry=beam.DoFn.TimerParam(EXPIRY),
    ):
        _, article = element
        raw = seen.read()
        if raw is None:
            expiry.set(timestamp + Duration(self.ttl_seconds))
        merged, state = merge_feeds(article, json.loads(raw or "{}"))
        if len(state["feeds"]) > 1:
            self.merged.inc()
        seen.write(json.dumps(state))
        yield merged

    @on_timer(EXPIRY)
    def forget(self, seen=beam.DoFn.StateParam(SEEN)):
        seen.clear()


class MergeFeeds(beam.PTransform):
    """Article -> Article recording every feed of its canonical URL (one document)."""

    def __init__(self, ttl_seconds: float) -> None:
        super().__init__()
        self.ttl_seconds = ttl_seconds

    def expand(self, articles):
        return (
            articles
            | "KeyByCanonicalUrl" >> beam.Map(lambda a: (a.canonical_url, a))
            | "MergeFeeds" >> beam.ParDo(MergeFeedsDoFn(self.ttl_seconds))
        )
