"""Feed hygiene (``transforms/feed_hygiene.py``): failing feeds backed off by the weight of
their failures, and intervals that follow how often a feed publishes; on Prism too."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.config import FeedSpec, FetchSettings
from pipeline.services.runners import prism_args
from pipeline.services.sample_site import FixtureServer
from transforms.feed_hygiene import (
    adapt_interval,
    failure_weight,
    note_failure,
    note_success,
    publish_hint,
)
from transforms.feeds import PollFeeds, parse_feed

T0 = datetime(2026, 12, 7, 12, tzinfo=timezone.utc)


def test_failures_weigh_by_kind_and_back_off_exponentially_up_to_the_cap():
    assert (failure_weight("http_404"), failure_weight("http_403")) == (1.0, 0.5)
    assert failure_weight("timeout") == failure_weight("http_503") == 0.25
    entry: dict = {}
    waits = [note_failure(entry, "http_404", 0.0, 60.0, 3600.0) for _ in range(7)]
    assert waits == [120.0, 240.0, 480.0, 960.0, 1920.0, 3600.0, 3600.0]
    assert entry["failing"]["count"] == 7 and entry["failing"]["last"] == "http_404"
    assert note_success(entry)["count"] == 7 and "failing" not in entry  # reset
    assert note_failure(entry, "timeout", 0.0, 60.0, 3600.0) == 60.0 * 2**0.25


def test_the_feed_s_own_ttl_and_update_period_are_honoured():
    assert publish_hint({"ttl": "30"}) == 1800.0
    assert publish_hint({"sy_updateperiod": "hourly", "sy_updatefrequency": "2"}) == 1800.0
    assert publish_hint({"ttl": "x", "sy_updateperiod": "sometimes"}) is None
    rss = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><ttl>15</ttl>'
        b"<item><link>https://a.example/1</link></item></channel></rss>"
    )
    assert parse_feed(rss, FeedSpec(url="https://a.example/feed")).hint == 900.0


def _dates(*minutes: float) -> list[datetime | None]:
    return [T0 + timedelta(minutes=m) for m in minutes]


def test_an_interval_follows_the_feed_s_publishing_within_its_bounds():
    busy: dict = {}
    now = T0.timestamp()
    assert adapt_interval(busy, _dates(0), now, 60, None, None) == 60  # first poll
    for n in range(1, 6):  # two new items per minute
        later = now + 60 * n
        adapt_interval(busy, _dates(*range(0, 2 * n + 1)), later, 60, None, None)
    assert busy["interval"] == 60  # never faster than configured
    quiet: dict = {}
    adapt_interval(quiet, _dates(0), now, 60, None, None)
    for n in range(1, 8):  # nothing new
        adapt_interval(quiet, None if n % 2 else _dates(0), now + 60 * n, 60, 480, None)
    assert quiet["interval"] == 480  # its bound
    unbounded: dict = {}
    adapt_interval(unbounded, _dates(0), now, 60, None, None)
    assert adapt_interval(unbounded, None, now + 60, 60, None, None) == 60  # not slowed
    slow: dict = {}
    adapt_interval(slow, _dates(0), now, 60, 3600, None)
    for n in range(1, 20):  # one new item every 5 minutes, polled each minute
        adapt_interval(slow, _dates(*range(0, n // 5 * 5 + 1, 5)), now + 60 * n, 60, 3600, None)
    assert 200 < slow["interval"] < 450, slow  # about its 300 s
    asks: dict = {}
    adapt_interval(asks, _dates(0), now, 60, None, 900)
    adapt_interval(asks, _dates(0, 1), now + 60, 60, None, 900)
    assert asks["interval"] == 900  # its <ttl> 15
    undated: dict = {}
    adapt_interval(undated, [None], now, 60, None, None)
    assert adapt_interval(undated, [None, None], now + 60, 60, None, None) == 60


def _rss(items: list[tuple[str, datetime]]) -> str:
    entries = "".join(
        f"<item><link>{url}</link><pubDate>{format_datetime(when)}</pubDate></item>"
        for url, when in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel>{entries}</channel></rss>'


def test_on_prism_a_busy_feed_is_polled_more_than_a_quiet_one_and_a_dead_one_backs_off(
    web, tmp_path
):
    """Three feeds at a 1 s interval for 20 s: one gains an item every second, one never
    does, one answers 404 (hard: 2 s, 4 s, 8 s ... apart)."""
    rss = {"Content-Type": "application/rss+xml"}
    start = datetime.now(timezone.utc)
    busy_items = [(web.url("/b/0"), start)]
    busy = web.add_route("/busy.xml", _rss(busy_items), rss)
    quiet = web.add_route("/quiet.xml", _rss([(web.url("/q/0"), start)]), rss)
    with FixtureServer(tmp_path / "dead") as other:
        dead = other.url("/gone.xml")  # no route: 404
        stop = threading.Event()

        def publish() -> None:
            n = 0
            while not stop.wait(1.0):
                n += 1
                busy_items.append((web.url(f"/b/{n}"), datetime.now(timezone.utc)))
                web.add_route("/busy.xml", _rss(busy_items[-20:]), rss)

        threading.Thread(target=publish, daemon=True).start()
        feeds = [
            FeedSpec(url=url, name=name, interval=1, max_interval=6)
            for name, url in (("busy", busy), ("quiet", quiet), ("dead", dead))
        ]
        settings = FetchSettings(
            allow_private_addresses=True, retries=0, timeout=5, host_min_delay=0
        )
        with beam.Pipeline(options=PipelineOptions(prism_args(streaming=True))) as p:
            _ = p | PollFeeds(feeds, settings, duration=20, tick_seconds=1, jitter=0)
        stop.set()
        polls = {
            name: sorted(r.at for r in server.requests if r.path == path)
            for name, server, path in (
                ("busy", web, "/busy.xml"),
                ("quiet", web, "/quiet.xml"),
                ("dead", other, "/gone.xml"),
            )
        }
    counts = {name: len(times) for name, times in polls.items()}
    assert counts["busy"] >= 12, counts  # about once a second
    assert counts["quiet"] <= counts["busy"] / 2, counts  # slowed towards 6 s
    gaps = [b - a for a, b in zip(polls["dead"], polls["dead"][1:], strict=False)]
    assert counts["dead"] <= 4 and all(g >= 1.8 for g in gaps), polls["dead"]
    assert gaps == sorted(gaps), gaps  # longer each time


def test_a_host_that_no_longer_resolves_is_a_hard_failure(monkeypatch):
    """The resolver is stood in for (no query may leave this machine): what urllib3 gets
    from it when a name does not exist."""
    import socket

    from transforms.fetch import FetchError, fetch_url, make_session

    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if host == "feeds.gone.example":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    settings = FetchSettings(allow_private_addresses=True, retries=0, timeout=2, host_min_delay=0)
    with pytest.raises(FetchError) as info:
        fetch_url(make_session(settings), "http://feeds.gone.example/rss", settings)
    assert info.value.reason == "dns" and failure_weight("dns") == 1.0
