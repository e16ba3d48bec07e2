"""Poll RSS/Atom feeds on a schedule and emit their items.

``parse_feed`` is a plain function (bytes in, items out) on top of feedparser;
``PollFeeds`` drives it with Beam's ``PeriodicImpulse``, one impulse per distinct
poll interval, and ``DropSeenItems`` drops items already emitted (keyed state that
expires after a TTL).
"""

from __future__ import annotations

import calendar
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urljoin

import apache_beam as beam
import feedparser
import requests
from apache_beam.coders import BooleanCoder
from apache_beam.metrics import Metrics
from apache_beam.transforms.periodicsequence import PeriodicImpulse
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.utils.timestamp import MAX_TIMESTAMP, Duration, Timestamp

from pipeline.config import FeedSpec, FetchSettings
from pipeline.launcher import DRAINING
from transforms.article import Failure, FeedItem
from transforms.fetch import FetchError, fetch_url, make_session
from transforms.urls import canonicalize_url

log = logging.getLogger(__name__)


@dataclass
class ParsedFeed:
    """The items feedparser could read, and whether the feed was malformed."""

    items: list[FeedItem]
    degraded: bool = False
    problem: str = ""
    title: str = ""
    validators: dict[str, str] = field(default_factory=dict)


def _entry_time(entry: feedparser.FeedParserDict) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if value:
            return datetime.fromtimestamp(calendar.timegm(value), tz=timezone.utc)
    return None


def parse_feed(
    content: bytes,
    feed: FeedSpec,
    headers: dict[str, str] | None = None,
    base_url: str | None = None,
) -> ParsedFeed:
    """Return the items of an RSS/Atom document; malformed feeds keep what parsed."""
    parsed = feedparser.parse(content, response_headers=headers or {})
    base = base_url or feed.url
    items = []
    for entry in parsed.entries:
        link = entry.get("link") or entry.get("id") or ""
        if not link:
            continue
        url = canonicalize_url(urljoin(base, link.strip()))
        if not url.startswith(("http://", "https://")):
            continue
        items.append(
            FeedItem(
                url=url,
                feed_url=feed.url,
                title=(entry.get("title") or "").strip(),
                published_at=_entry_time(entry),
                summary=(entry.get("summary") or "")[:2000],
                language=feed.language or parsed.feed.get("language"),
                tags=list(feed.tags),
                publisher=feed.name,
            )
        )
    problem = ""
    if parsed.get("bozo"):
        exc = parsed.get("bozo_exception")
        problem = f"{exc.__class__.__name__}: {exc}" if exc else "malformed feed"
    return ParsedFeed(
        items=items,
        degraded=bool(parsed.get("bozo")),
        problem=problem,
        title=parsed.feed.get("title", ""),
    )


def poll_feed(
    session: requests.Session,
    feed: FeedSpec,
    settings: FetchSettings,
    validators: dict[str, str] | None = None,
) -> ParsedFeed | None:
    """Return the feed's items, or None when the server says it has not changed (304)."""
    headers = {
        "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5"
    }
    if validators:
        if validators.get("etag"):
            headers["If-None-Match"] = validators["etag"]
        if validators.get("last-modified"):
            headers["If-Modified-Since"] = validators["last-modified"]
    resp = fetch_url(session, feed.url, settings, headers=headers)
    if resp.status == 304:
        return None
    if resp.status != 200:
        raise FetchError(f"http_{resp.status}", f"{feed.url}: HTTP {resp.status}")
    result = parse_feed(resp.body, feed, resp.headers, base_url=resp.url)
    result.validators = {k: resp.headers[k] for k in ("etag", "last-modified") if k in resp.headers}
    return result


class PollFeedsDoFn(beam.DoFn):
    """On each tick, poll the feeds of one interval group and emit their items."""

    def __init__(self, feeds: list[FeedSpec], settings: FetchSettings) -> None:
        self.feeds = feeds
        self.settings = settings
        self.polled = Metrics.counter("wirestream", "feeds_polled")
        self.unchanged = Metrics.counter("wirestream", "feeds_unchanged")
        self.degraded = Metrics.counter("wirestream", "feeds_degraded")
        self.failed = Metrics.counter("wirestream", "feeds_failed")
        self.items = Metrics.counter("wirestream", "feed_items")

    def setup(self) -> None:
        self.session = make_session(self.settings)
        self.validators: dict[str, dict[str, str]] = {}

    def process(self, _tick):
        if DRAINING.is_set():
            return
        for feed in self.feeds:
            try:
                result = poll_feed(self.session, feed, self.settings, self.validators.get(feed.url))
            except FetchError as exc:
                self.failed.inc()
                log.warning("feed %s failed (%s): %s", feed.url, exc.reason, exc)
                yield beam.pvalue.TaggedOutput(
                    "dead_letter", Failure("poll", exc.reason, feed.url, str(exc))
                )
                continue
            self.polled.inc()
            if result is None:
                self.unchanged.inc()
                continue
            self.validators[feed.url] = result.validators
            if result.degraded:
                self.degraded.inc()
                log.warning(
                    "feed %s is malformed (%s); kept %d items",
                    feed.url,
                    result.problem,
                    len(result.items),
                )
            self.items.inc(len(result.items))
            yield from result.items

    def teardown(self) -> None:
        self.session.close()


class PollFeeds(beam.PTransform):
    """Poll every feed at its own interval, for ``duration`` seconds (None: forever)."""

    def __init__(
        self, feeds: list[FeedSpec], settings: FetchSettings, duration: float | None = None
    ) -> None:
        super().__init__()
        self.feeds = feeds
        self.settings = settings
        self.duration = duration

    def expand(self, pbegin):
        groups: dict[float, list[FeedSpec]] = defaultdict(list)
        for feed in self.feeds:
            groups[feed.interval].append(feed)
        start = Timestamp.now()
        stop = start + Duration(self.duration) if self.duration else MAX_TIMESTAMP
        items, failures = [], []
        for interval, feeds in sorted(groups.items()):
            label = f"every {interval:g}s"
            polled = (
                pbegin
                | f"Tick {label}"
                >> PeriodicImpulse(
                    start_timestamp=start, stop_timestamp=stop, fire_interval=interval
                )
                | f"Poll {label}"
                >> beam.ParDo(PollFeedsDoFn(feeds, self.settings)).with_outputs(
                    "dead_letter", main="items"
                )
            )
            items.append(polled.items)
            failures.append(polled.dead_letter)
        return {
            "items": tuple(items) | "AllItems" >> beam.Flatten(),
            "dead_letter": tuple(failures) | "AllPollFailures" >> beam.Flatten(),
        }


class DropSeenItemsDoFn(beam.DoFn):
    """Emit an item the first time its URL is seen; forget the URL after ``ttl_seconds``."""

    SEEN = ReadModifyWriteStateSpec("seen", BooleanCoder())
    EXPIRY = TimerSpec("expiry", TimeDomain.WATERMARK)

    def __init__(self, ttl_seconds: float) -> None:
        self.ttl_seconds = ttl_seconds
        self.new = Metrics.counter("wirestream", "items_new")
        self.duplicate = Metrics.counter("wirestream", "items_duplicate")

    def process(
        self,
        element: tuple[str, FeedItem],
        timestamp=beam.DoFn.TimestampParam,
        seen=beam.DoFn.StateParam(SEEN),
        expiry=beam.DoFn.TimerParam(EXPIRY),
    ):
        _, item = element
        if seen.read():
            self.duplicate.inc()
            return
        seen.write(True)
        expiry.set(timestamp + Duration(self.ttl_seconds))
        self.new.inc()
        yield item

    @on_timer(EXPIRY)
    def forget(self, seen=beam.DoFn.StateParam(SEEN)):
        seen.clear()


class DropSeenItems(beam.PTransform):
    """FeedItem -> FeedItem, dropping URLs seen within the TTL."""

    def __init__(self, ttl_seconds: float) -> None:
        super().__init__()
        self.ttl_seconds = ttl_seconds

    def expand(self, items):
        return (
            items
            | "KeyByUrl" >> beam.Map(lambda item: (item.url, item))
            | "DropSeen" >> beam.ParDo(DropSeenItemsDoFn(self.ttl_seconds))
        )
