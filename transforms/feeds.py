"""Poll RSS/Atom feeds and sitemaps on a schedule and emit their items.

``parse_feed`` is a plain function (bytes in, items out) on top of feedparser;
``poll_feed`` adds the conditional GET. ``PollFeeds`` drives them from one Beam
``PeriodicImpulse``: each tick offers every host's pacing lane to a stateful ``DoFn``
(keyed as page fetches are, ``transforms.politeness``), whose state holds each feed's
ETag/Last-Modified and the time it is next due (its interval, varied by a random jitter
so feeds on one host drift apart), and when each host was last polled: a host's polls
are paced across all workers as its pages are, and never wait asleep. Keyed state, not
instance state, so a restarted or rebalanced worker still sends the validators and keeps
the schedule. A sitemap source (``SitemapSpec``) is polled the same way by
``transforms.sitemap_walk``; its state holds every document's validators.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urljoin

import apache_beam as beam
import feedparser
import requests
from apache_beam.coders import StrUtf8Coder
from apache_beam.metrics import Metrics
from apache_beam.transforms.periodicsequence import PeriodicImpulse
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec
from apache_beam.utils.timestamp import MAX_TIMESTAMP, Duration, Timestamp

from transforms.article import FeedItem
from transforms.dates import feed_entry_time
from transforms.dead_letters import Failure, dead_letter
from transforms.feed_hygiene import adapt_interval, note_failure, note_success, publish_hint
from transforms.fetch import FetchError, fetch_url, make_session
from transforms.guard import guarded
from transforms.lifecycle import StopRequest
from transforms.politeness import gate_for, host_key, pacing_lane
from transforms.settings import FeedSpec, FetchSettings, SitemapSpec
from transforms.sitemap_walk import poll_sitemap
from transforms.urls import canonicalize_url

log = logging.getLogger(__name__)


@dataclass
class ParsedFeed:
    """The items feedparser could read, and whether the feed was malformed."""

    items: list[FeedItem]
    degraded: bool = False
    problem: str = ""
    validators: dict[str, str] = field(default_factory=dict)
    title: str = ""  # the feed's own title
    hint: float | None = None  # the shortest poll interval the feed asks for (ttl)


def entry_authors(entry) -> list[str]:
    """Return the names feedparser read for an entry (``<author>``, ``<dc:creator>``)."""
    names = [a.get("name", "").strip() for a in entry.get("authors", []) if isinstance(a, dict)]
    names = [n for n in names if n] or [(entry.get("author") or "").strip()]
    return [n for n in dict.fromkeys(names) if n]


# feedparser asks chardet for an encoding when chardet is installed (readability-lxml, in the
# bench extra, pulls it in). chardet calls windows-1252 bytes ISO-8859-1, which turns curly
# quotes into C1 control characters; without it feedparser tries utf-8, then windows-1252,
# the WHATWG reading of such pages. Switched off so the result does not depend on what
# else happens to be installed (feedparser has no option for it).
feedparser.encodings.lazy_chardet_encoding = None


def read_feed(
    content: bytes, base: str, headers: dict[str, str] | None = None
) -> feedparser.FeedParserDict:
    """Return feedparser's reading of ``content`` fetched from ``base`` with ``headers``
    (their charset and content type decide how the bytes are decoded)."""
    # feedparser resolves relative links against Content-Location, but only an
    # absolute one; make it absolute against the address we fetched.
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    if headers:  # fetched over HTTP (with no headers at all feedparser sniffs the type)
        headers["content-location"] = urljoin(base, headers.get("content-location", ""))
    return feedparser.parse(content, response_headers=headers)


def parse_feed(
    content: bytes,
    feed: FeedSpec,
    headers: dict[str, str] | None = None,
    base_url: str | None = None,
) -> ParsedFeed:
    """Return the items of an RSS/Atom document; malformed feeds keep what parsed."""
    base = base_url or feed.url
    parsed = read_feed(content, base, headers)
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
                published_at=feed_entry_time(entry),
                language=feed.language or parsed.feed.get("language"),
                tags=list(feed.tags),
                publisher=feed.name,
                authors=entry_authors(entry),
            )
        )
    problem = ""
    hint = publish_hint(parsed.feed)
    if parsed.get("bozo"):
        exc = parsed.get("bozo_exception")
        problem = f"{exc.__class__.__name__}: {exc}" if exc else "malformed feed"
    return ParsedFeed(
        items=items,
        degraded=bool(parsed.get("bozo")),
        problem=problem,
        title=(parsed.feed.get("title") or "").strip(),
        hint=hint,
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
    result.validators = resp.validators
    return result


def next_due(now: float, interval: float, jitter: float, rng: random.Random) -> float:
    """Return when a feed polled at ``now`` is next due: ``interval`` +/- ``jitter`` of it."""
    return now + interval * (1 + rng.uniform(-jitter, jitter))


def next_due_after(
    due: float, now: float, interval: float, jitter: float, rng: random.Random
) -> float:
    """Return when a feed that was due at ``due`` and is polled at ``now`` is next due.

    Counted from when it was due, not from when the poll came, so waiting for a tick or
    for the host does not add up poll after poll. A feed that fell a whole interval
    behind starts afresh from ``now`` (polled once, not twice in a row).
    """
    scheduled = next_due(due, interval, jitter, rng)
    return scheduled if scheduled > now else next_due(now, interval, jitter, rng)


def feeds_by_host(feeds: list[FeedSpec]) -> dict[str, list[FeedSpec]]:
    """Return the feeds grouped by politeness key (host and port), in their given order."""
    by_host: dict[str, list[FeedSpec]] = {}
    for feed in feeds:
        by_host.setdefault(host_key(feed.url), []).append(feed)
    return by_host


def feeds_by_lane(feeds: list[FeedSpec]) -> dict[int, list[str]]:
    """Return the feed URLs grouped by their host's pacing lane, a host's feeds together."""
    by_lane: dict[int, list[str]] = {}
    for host, host_feeds in feeds_by_host(feeds).items():
        by_lane.setdefault(pacing_lane(host), []).extend(feed.url for feed in host_feeds)
    return by_lane


def first_poll_offsets(feeds: list[FeedSpec], tick: float) -> dict[str, float]:
    """Return when each feed is first due, in seconds after its host is first seen.

    The k-th feed of a host waits k times the tick (or its interval's share of the
    host's feeds, when that is shorter), so a host's feeds start about one per tick. All
    at once, a host's polls would wait out ``host_min_delay`` one after another, holding
    up every other host's polls on that worker meanwhile.
    """
    return {
        feed.url: k * min(tick, feed.interval / len(host_feeds))
        for host_feeds in feeds_by_host(feeds).values()
        for k, feed in enumerate(host_feeds)
    }


#: The shortest tick chosen for busy hosts: Flink's ticker drops a sub-second part.
MIN_AUTO_TICK = 1.0


def host_poll_gaps(feeds: list[FeedSpec]) -> dict[str, float]:
    """Return, per host, the seconds between polls its feeds need on average."""
    return {
        host: 1 / sum(1 / feed.interval for feed in host_feeds)
        for host, host_feeds in feeds_by_host(feeds).items()
    }


def choose_tick(feeds: list[FeedSpec], configured: float) -> float:
    """Return the poll tick: ``configured``, or shorter (down to 1 s) where a host gets
    at most one poll per tick and its feeds need more (with a fifth to spare)."""
    busiest = min(host_poll_gaps(feeds).values(), default=configured)
    shortest = min((feed.interval for feed in feeds), default=configured)
    return min(configured, shortest, max(MIN_AUTO_TICK, busiest * 0.8))


def warn_about_busy_hosts(feeds: list[FeedSpec], least_gap: float) -> list[str]:
    """Log and return the hosts whose feeds need more polls than one per ``least_gap``
    seconds allows: their polls come late."""
    busy = []
    for host, gap in host_poll_gaps(feeds).items():
        if gap < least_gap:
            busy.append(host)
            log.warning(
                "host %s: its feeds need a poll every %.1fs, but a host gets at most one "
                "per %gs; they will come late (lengthen their intervals or host_min_delay)",
                host,
                gap,
                least_gap,
            )
    return busy


class PollFeedDoFn(beam.DoFn):
    """(lane, tick) -> the new items of the lane's feeds that are due; keyed state per lane.

    Keyed by the hosts' pacing lanes, as page fetches are (``transforms.politeness``):
    Beam runs one key's elements one at a time wherever the key lives, so a host's polls
    start ``host_min_delay`` after its previous poll ended, across all workers, and on
    the worker that fetches the host's pages. The state holds each of the lane's feeds'
    validators and next due time, and when each of its hosts' last poll ended. It never
    sleeps: a due feed whose host must wait is polled at a later tick.
    """

    FEEDS = ReadModifyWriteStateSpec("feeds", StrUtf8Coder())
    LAST_ENDS = ReadModifyWriteStateSpec("last_ends", StrUtf8Coder())

    def __init__(
        self,
        feeds: list[FeedSpec],
        settings: FetchSettings,
        jitter: float,
        tick: float,
        stop_marker: str | None = None,
        backoff_max: float = 21_600.0,
        adapt: bool = True,
    ) -> None:
        self.feeds = {feed.url: feed for feed in feeds}
        self.backoff_max, self.adapt = backoff_max, adapt
        self.stop_marker = stop_marker
        self.lanes = feeds_by_lane(feeds)
        self.offsets = first_poll_offsets(feeds, tick)
        self.settings = settings
        self.jitter = jitter
        self.polled = Metrics.counter("wirestream", "feeds_polled")
        self.unchanged = Metrics.counter("wirestream", "feeds_unchanged")
        self.degraded = Metrics.counter("wirestream", "feeds_degraded")
        self.items = Metrics.counter("wirestream", "feed_items")
        self.backed_off = Metrics.counter("wirestream", "feeds_backed_off")

    def setup(self) -> None:
        self.session = make_session(self.settings)
        self.gate = gate_for(self.settings.host_min_delay, self.settings.host_max_concurrent)
        self.rng = random.Random()
        self.stopping = StopRequest(self.stop_marker)

    @guarded("poll", partial=True)
    def process(
        self,
        element: tuple[int, object],
        feeds_state=beam.DoFn.StateParam(FEEDS),
        last_ends=beam.DoFn.StateParam(LAST_ENDS),
    ):
        lane, _ = element
        now = time.time()
        known = json.loads(feeds_state.read() or "{}")
        state = {  # the lane's feeds (new ones first due after their offset)
            url: known.get(url) or {"due": now + self.offsets[url], "validators": {}}
            for url in self.lanes[lane]
        }
        ends = json.loads(last_ends.read() or "{}")
        waiting: set[str] = set()  # hosts that may not be asked at this tick
        due = sorted((entry["due"], url) for url, entry in state.items() if entry["due"] <= now)
        for _, url in due:
            host = host_key(url)
            if self.stopping.is_set():
                break
            if host in waiting or not self.may_ask(url, ends.get(host)):
                waiting.add(host)  # its due feeds stay due: a later tick polls them
                continue
            feed, entry = self.feeds[url], state[url]
            entry["due"] = next_due_after(
                entry["due"],
                time.time(),
                entry.get("interval", feed.interval),
                self.jitter,
                self.rng,
            )
            try:  # written whatever happens: due again at its interval even if it fails
                yield from self.poll(feed, entry)
            finally:
                ends[host] = time.time()
                feeds_state.write(json.dumps(state))
                last_ends.write(json.dumps(ends))

    def may_ask(self, url: str, last_end: float | None) -> bool:
        """Return whether ``url``'s host may be asked now, without waiting:
        ``host_min_delay`` has passed since its last poll ended (keyed state, any worker)
        and this process is not in the middle of, or just after, a page request to it
        (the gate).

        Never waiting is the point: a bundle holds many hosts, and one host's sleep held
        up all the others (measured: feeds due every 60 s were polled every 85 s at the
        median, 173 s at the 95th percentile)."""
        if time.time() < (last_end or 0.0) + self.settings.host_min_delay:
            return False
        return self.gate.is_free(url)

    def poll(self, feed: FeedSpec, entry: dict):
        """Poll one feed (its validators in ``entry``, updated); yield items and failures."""
        if isinstance(feed, SitemapSpec):
            yield from self.sitemap_items(feed, entry)
            return
        try:
            result = poll_feed(self.session, feed, self.settings, entry["validators"])
        except FetchError as exc:
            self.back_off(feed, entry, exc.reason)
            yield dead_letter(Failure("poll", exc.reason, feed.url, str(exc)))
            return
        self.polled.inc()
        failed = note_success(entry)
        if failed:
            log.info("feed %s answers again after %d failed polls", feed.url, failed["count"])
        if self.adapt:
            published = None if result is None else [i.published_at for i in result.items]
            hint = None if result is None else result.hint
            adapt_interval(entry, published, time.time(), feed.interval, feed.max_interval, hint)
        if result is None:
            self.unchanged.inc()
            return
        entry["validators"] = result.validators
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

    def back_off(self, feed: FeedSpec, entry: dict, reason: str) -> None:
        """Put a failing feed's next poll off (``transforms.feed_hygiene``) and say so."""
        now = time.time()
        wait = note_failure(entry, reason, now, feed.interval, self.backoff_max)
        entry["due"] = max(entry["due"], now + wait)
        failing = entry["failing"]
        if failing["score"] >= 1:
            self.backed_off.inc()
            log.warning(
                "feed %s has failed %d polls in a row (last: %s); next poll in %.0fs",
                feed.url,
                failing["count"],
                reason,
                wait,
            )

    def sitemap_items(self, spec: SitemapSpec, entry: dict):
        """Poll a sitemap source: its documents' validators are the feed's validators."""
        now = datetime.now(timezone.utc)
        poll = poll_sitemap(self.session, spec, self.settings, entry["validators"], now)
        entry["validators"] = poll.state
        for failure in poll.failures:
            yield dead_letter(failure)
        if poll.read + poll.unchanged:
            self.polled.inc()
        if poll.read == 0 and poll.unchanged:
            self.unchanged.inc()
        for problem in poll.problems:
            self.degraded.inc()
            log.warning("sitemap %s is malformed: %s", spec.url, problem)
        for name, value in (
            ("sitemaps_read", poll.read),
            ("sitemaps_unchanged", poll.unchanged),
            ("sitemap_loops", poll.loops),
            ("sitemap_urls_truncated", poll.truncated),
            ("sitemap_urls_old", poll.old),
        ):
            if value:
                Metrics.counter("wirestream", name).inc(value)
        if poll.loops or poll.truncated:
            log.warning(
                "sitemap %s: %d loops, %d URLs or sitemaps past the limits, not followed",
                spec.url,
                poll.loops,
                poll.truncated,
            )
        self.items.inc(len(poll.items))
        yield from poll.items

    def teardown(self) -> None:
        self.session.close()


class PollFeeds(beam.PTransform):
    """Poll every feed at its own interval (with jitter) for ``duration`` seconds (None: forever).

    One impulse ticks every ``tick_seconds`` (or the shortest feed interval, if shorter);
    a feed is polled on the first tick after it is due.
    """

    def __init__(
        self,
        feeds: list[FeedSpec],
        settings: FetchSettings,
        duration: float | None = None,
        tick_seconds: float = 2.0,
        jitter: float = 0.1,
        stop_marker: str | None = None,
        backoff_max: float = 21_600.0,
        adapt: bool = True,
    ) -> None:
        super().__init__()
        self.backoff_max, self.adapt = backoff_max, adapt
        self.feeds = feeds
        self.settings = settings
        self.duration = duration
        self.tick = choose_tick(feeds, tick_seconds)
        self.jitter = jitter
        self.stop_marker = stop_marker  # see transforms.lifecycle.StopRequest
        warn_about_busy_hosts(feeds, max(self.tick, settings.host_min_delay))

    def expand(self, pbegin):
        start = Timestamp.now()
        stop = start + Duration(self.duration) if self.duration else MAX_TIMESTAMP
        lanes = sorted(feeds_by_lane(self.feeds))
        polled = (
            pbegin
            | "Tick"
            >> PeriodicImpulse(start_timestamp=start, stop_timestamp=stop, fire_interval=self.tick)
            | "EveryLane"
            >> beam.FlatMap(lambda _tick: [(lane, None) for lane in lanes]).with_output_types(
                tuple[int, None]
            )
            | "PollDueFeeds"
            >> beam.ParDo(
                PollFeedDoFn(
                    self.feeds,
                    self.settings,
                    self.jitter,
                    self.tick,
                    self.stop_marker,
                    self.backoff_max,
                    self.adapt,
                )
            ).with_outputs("dead_letter", main="items")
        )
        return {"items": polled.items, "dead_letter": polled.dead_letter}
