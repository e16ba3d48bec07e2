"""One article, one document, however many feeds list it.

``DropSeenItems`` (keyed by item URL) passes an item the first time each feed lists
it and drops repeats. ``MergeFeeds`` (keyed by canonical URL, after extraction)
remembers every feed that brought an article and its first publish date, and emits
the article with all of them. Writes are whole-document ``index`` ops keyed by the
canonical URL and the local Elasticsearch has no scripting, so the union has to be
made here: a second feed's copy overwrites the first with both feeds recorded, and
keeps the first date so it lands in the same monthly index. Both states expire after
the dedupe TTL.

Both are keyed by a *shard* of the URL (:func:`dedupe_shard`), each shard's state a table
of its URLs, not by the URL itself: a runner may keep an entry for every key it has ever
seen. Prism does: it zeroes a cleared state and never deletes it (its engine's
``ClearBagState``: "Delete makes it difficult to delete the persisted stage state"), and a
stream's global window never expires, so keyed by URL the Prism binary grew with every
article (+27 MB/h at one article per second, ``bench/stream_scale.py``). With shards the
keys are bounded (:data:`DEDUPE_SHARDS`) and each shard holds the URLs seen within the TTL.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

import apache_beam as beam
from apache_beam.coders import StrUtf8Coder
from apache_beam.metrics import Metrics
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.utils.timestamp import Timestamp

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


#: Keys of the dedupe steps. Each shard holds rate x TTL / shards URLs (42 at one article
#: per second and a 48 h TTL); the runner holds at most this many keys per step.
DEDUPE_SHARDS = 4096


def dedupe_shard(url: str) -> int:
    """Return the dedupe shard of ``url``: the same on every worker and every run."""
    digest = hashlib.blake2b(url.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % DEDUPE_SHARDS


def live_entries(entries: dict[str, dict], now: float) -> dict[str, dict]:
    """Return the entries of a shard still within their TTL at ``now`` (epoch seconds)."""
    return {url: entry for url, entry in entries.items() if entry["until"] > now}


class ShardTable:
    """A shard's URLs, each with what a step remembers of it and when it is forgotten
    (``until``): read and pruned at an element's time, written back with the shard's
    expiry timer at the earliest ``until`` (so an idle shard empties too)."""

    def __init__(self, state, expiry, now: float) -> None:
        self.state, self.expiry = state, expiry
        self.entries = live_entries(json.loads(state.read() or "{}"), now)

    def save(self) -> None:
        if not self.entries:
            self.state.clear()
            return
        self.state.write(json.dumps(self.entries))
        soonest = min(entry["until"] for entry in self.entries.values())
        self.expiry.set(Timestamp.of(soonest))


def _seconds(timestamp: Timestamp) -> float:
    return timestamp.micros / 1e6


class DropSeenItemsDoFn(beam.DoFn):
    """(shard, item) -> the item once per (URL, feed); a URL is forgotten ``ttl_seconds``
    after it was first seen."""

    URLS = ReadModifyWriteStateSpec("urls", StrUtf8Coder())
    EXPIRY = TimerSpec("expiry", TimeDomain.WATERMARK)

    def __init__(self, ttl_seconds: float) -> None:
        self.ttl_seconds = ttl_seconds
        self.new = Metrics.counter("wirestream", "items_new")
        self.other_feed = Metrics.counter("wirestream", "items_from_another_feed")
        self.duplicate = Metrics.counter("wirestream", "items_duplicate")

    def process(
        self,
        element: tuple[int, FeedItem],
        timestamp=beam.DoFn.TimestampParam,
        urls=beam.DoFn.StateParam(URLS),
        expiry=beam.DoFn.TimerParam(EXPIRY),
    ):
        _, item = element
        now = _seconds(timestamp)
        table = ShardTable(urls, expiry, now)
        entry = table.entries.get(item.url)
        if entry is not None and item.feed_url in entry["feeds"]:
            self.duplicate.inc()
            return
        if entry is not None:
            self.other_feed.inc()
            entry["feeds"].append(item.feed_url)
        else:
            self.new.inc()
            table.entries[item.url] = {"feeds": [item.feed_url], "until": now + self.ttl_seconds}
        table.save()
        yield item

    @on_timer(EXPIRY)
    def forget(
        self,
        fired=beam.DoFn.TimestampParam,
        urls=beam.DoFn.StateParam(URLS),
        expiry=beam.DoFn.TimerParam(EXPIRY),
    ):
        ShardTable(urls, expiry, _seconds(fired)).save()


class DropSeenItems(beam.PTransform):
    """FeedItem -> FeedItem, dropping a URL a feed already listed within the TTL."""

    def __init__(self, ttl_seconds: float) -> None:
        super().__init__()
        self.ttl_seconds = ttl_seconds

    def expand(self, items):
        return (
            items
            | "KeyByUrlShard" >> beam.Map(lambda item: (dedupe_shard(item.url), item))
            | "DropSeen" >> beam.ParDo(DropSeenItemsDoFn(self.ttl_seconds))
        )


class MergeFeedsDoFn(beam.DoFn):
    """(shard, Article) -> the Article with every feed that listed its canonical URL so
    far; a URL is forgotten ``ttl_seconds`` after its first article."""

    URLS = ReadModifyWriteStateSpec("urls", StrUtf8Coder())
    EXPIRY = TimerSpec("expiry", TimeDomain.WATERMARK)

    def __init__(self, ttl_seconds: float) -> None:
        self.ttl_seconds = ttl_seconds
        self.merged = Metrics.counter("wirestream", "articles_in_several_feeds")

    def process(
        self,
        element: tuple[int, Article],
        timestamp=beam.DoFn.TimestampParam,
        urls=beam.DoFn.StateParam(URLS),
        expiry=beam.DoFn.TimerParam(EXPIRY),
    ):
        _, article = element
        now = _seconds(timestamp)
        table = ShardTable(urls, expiry, now)
        seen = table.entries.get(article.canonical_url)
        until = seen["until"] if seen else now + self.ttl_seconds
        merged, state = merge_feeds(article, seen or {})
        if len(state["feeds"]) > 1:
            self.merged.inc()
        table.entries[article.canonical_url] = {**state, "until": until}
        table.save()
        yield merged

    @on_timer(EXPIRY)
    def forget(
        self,
        fired=beam.DoFn.TimestampParam,
        urls=beam.DoFn.StateParam(URLS),
        expiry=beam.DoFn.TimerParam(EXPIRY),
    ):
        ShardTable(urls, expiry, _seconds(fired)).save()


class MergeFeeds(beam.PTransform):
    """Article -> Article recording every feed of its canonical URL (one document)."""

    def __init__(self, ttl_seconds: float) -> None:
        super().__init__()
        self.ttl_seconds = ttl_seconds

    def expand(self, articles):
        return (
            articles
            | "KeyByUrlShard" >> beam.Map(lambda a: (dedupe_shard(a.canonical_url), a))
            | "MergeFeeds" >> beam.ParDo(MergeFeedsDoFn(self.ttl_seconds))
        )
