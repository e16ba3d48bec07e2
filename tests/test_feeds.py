"""Feeds: real saved feeds parse, malformed ones keep their items, polls are conditional
(in the running pipeline too, through keyed state), and already-seen items are dropped."""

import random
import re
import time

import apache_beam as beam
import feedparser
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.utils.timestamp import Timestamp

from pipeline.config import ConfigError, FeedSpec, FetchSettings, load_settings
from pipeline.services.runners import prism_args
from pipeline.services.sample_site import FixtureServer
from tests.support.paths import SHARED
from transforms.article import FeedItem
from transforms.dedupe import DropSeenItems
from transforms.feeds import (
    PollFeeds,
    choose_tick,
    first_poll_offsets,
    next_due,
    next_due_after,
    parse_feed,
    poll_feed,
    read_feed,
    warn_about_busy_hosts,
)
from transforms.fetch import fetch_url, make_session

FAST = FetchSettings(allow_private_addresses=True, retries=0, timeout=5, host_min_delay=0)


def _feed(url="http://127.0.0.1/feed.xml", **kw):
    return FeedSpec(url=url, name="test", **kw)


def test_real_guardian_feed(shared_dir):
    content = (shared_dir / "fixtures/feeds/rss-parser/input/guardian.rss").read_bytes()
    parsed = parse_feed(content, _feed("https://www.theguardian.com/uk/rss", language="en"))
    assert not parsed.degraded
    assert len(parsed.items) == 55
    first = parsed.items[0]
    assert first.url.startswith("https://www.theguardian.com/")
    assert first.title and first.published_at is not None
    assert first.published_at.tzinfo is not None
    assert {i.feed_url for i in parsed.items} == {"https://www.theguardian.com/uk/rss"}
    assert first.authors == ["David Smith in Washington"]  # <dc:creator>, cleaned at extraction


def test_truncated_reuters_feed_is_degraded_not_fatal(shared_dir):
    content = (shared_dir / "fixtures/feeds/feed-rs/rss_2.0_invalid_1.xml").read_bytes()
    parsed = parse_feed(content, _feed())
    assert parsed.degraded
    assert parsed.problem


def test_techcrunch_with_leading_whitespace(shared_dir):
    content = (shared_dir / "fixtures/feeds/feedjira/TechCrunch.xml").read_bytes()
    parsed = parse_feed(content, _feed("https://techcrunch.com/feed/"))
    assert len(parsed.items) == 20
    assert all(i.url.startswith("http://feedproxy.google.com/") for i in parsed.items)
    assert all(i.title for i in parsed.items)


def test_windows_1252_feed_declared_utf8(shared_dir):
    content = (shared_dir / "fixtures/feeds/rss-parser/input/uolNoticias.rss").read_bytes()
    parsed = parse_feed(content, _feed())
    assert len(parsed.items) == 15
    # decoded as windows-1252 (what the bytes are), not as the declared utf-8
    assert parsed.items[0].title.endswith("simulações de 2º turno")
    assert all("\ufffd" not in i.title for i in parsed.items)
    assert parsed.degraded and "windows-1252" in parsed.problem  # and the feed says so


def test_relative_links_resolve_and_tracking_is_stripped():
    rss = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
      <item><title>A</title><link>/news/a.html?utm_source=rss&amp;id=1#top</link>
      <pubDate>Tue, 03 Mar 2026 10:00:00 GMT</pubDate></item></channel></rss>"""
    (item,) = parse_feed(rss, _feed("http://example.org/feeds/main.xml")).items
    assert item.url == "http://example.org/news/a.html?id=1"
    assert item.published_at.isoformat() == "2026-03-03T10:00:00+00:00"


def test_garbage_is_degraded_with_no_items():
    parsed = parse_feed(b"\x00\xff<<not a feed", _feed())
    assert parsed.degraded and parsed.items == []


def test_sample_site_feeds_and_conditional_get(sample_site):
    from pipeline.services.sample_site import feed_urls

    settings = FAST
    session = make_session(settings)
    for spec in feed_urls(sample_site):
        feed = FeedSpec(**spec)
        first = poll_feed(session, feed, settings)
        assert first.items, feed.url
        assert first.validators, "the server sends ETag/Last-Modified"
        sample_site.clear_requests()
        assert poll_feed(session, feed, settings, first.validators) is None
        (request,) = sample_site.requests
        assert request.status == 304
        assert "If-None-Match" in request.headers or "If-Modified-Since" in request.headers


@pytest.mark.runner
def test_drop_seen_items_on_prism():
    def item(url):
        return FeedItem(url=url, feed_url="f")

    stream = (
        TestStream()
        .advance_watermark_to(Timestamp(1000))
        .add_elements([item("a"), item("b"), item("a")])
        .advance_processing_time(5)
        .add_elements([item("b"), item("c")])
        .advance_watermark_to(Timestamp(1000 + 7200))  # past the TTL: "a" may come back
        .add_elements([item("a")])
        .advance_watermark_to_infinity()
    )
    options = PipelineOptions(prism_args(streaming=True))
    with beam.Pipeline(options=options) as p:
        urls = p | stream | DropSeenItems(ttl_seconds=3600) | beam.Map(lambda i: i.url)
        assert_that(urls, equal_to(["a", "b", "c", "a"]))


def _feedparser_case(path):
    """Return the ``Header:`` lines (as a dict) and the ``Expect:`` expression of a test feed."""
    head = path.read_bytes()[:2048].decode("latin-1")
    comment = head[head.find("<!--") : head.find("-->")]
    headers = dict(
        (name.strip(), value.strip())
        for name, value in (line.split(":", 1) for line in re.findall(r"Header:\s*(.+)", comment))
    )
    expect = re.search(r"Expect:\s*(.+)", comment).group(1).strip()
    return headers, expect


FEEDPARSER_TESTS = sorted(
    path
    for path in (SHARED / "fixtures/feeds/feedparser-tests").rglob("*.xml")
    if "Header:" in path.read_bytes()[:2048].decode("latin-1")
)


@pytest.mark.parametrize("path", FEEDPARSER_TESTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_feedparser_charset_cases_over_http(web, path):
    """Served with the headers each must come with; our fetch passes them to feedparser."""
    headers, expect = _feedparser_case(path)
    url = web.add_route(f"/{path.name}", path.read_bytes(), headers)
    expect = expect.replace("127.0.0.1:8097", f"127.0.0.1:{web.port}")  # their test server
    resp = fetch_url(make_session(FAST), url, FAST)
    raw = read_feed(resp.body, url, resp.headers)
    assert eval(expect, {"feedparser": feedparser}, raw), (headers, expect)
    assert parse_feed(resp.body, _feed(url), resp.headers).degraded == bool(raw.get("bozo"))


def test_feeds_file_validation_names_the_bad_key(tmp_path):
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds:\n  - {url: 'https://a.example/rss', interval: -5}\n")
    profile = tmp_path / "profile.yaml"
    profile.write_text(f"feeds_files: ['{feeds}']\n")
    with pytest.raises(ConfigError, match=r"feeds\.0\.interval"):
        load_settings(profile)
    feeds.write_text("- {url: 'ftp://a.example/rss'}\n- {url: 'https://b.example/rss', lang: en}\n")
    with pytest.raises(ConfigError, match=r"feeds\.0\.url.*http.*feeds\.1\.lang"):
        load_settings(profile)


def test_starter_feed_list_is_valid():
    from pipeline.config import REPO_ROOT

    settings = load_settings(REPO_ROOT / "configs" / "local.yaml")
    assert len(settings.feeds) >= 10
    assert all(f.name and f.language and f.tags for f in settings.feeds)


def test_next_due_jitters_within_bounds():
    rng = random.Random(4)
    dues = [next_due(1000.0, 300.0, 0.1, rng) - 1000.0 for _ in range(500)]
    assert 270.0 <= min(dues) < 280.0 and 320.0 < max(dues) <= 330.0
    assert next_due(0.0, 60.0, 0.0, rng) == 60.0


@pytest.mark.runner
def test_poll_feeds_on_prism_sends_validators_from_keyed_state(web):
    rss = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        "<item><title>A</title><link>/a.html</link></item>"
        "<item><title>B</title><link>/b.html</link></item></channel></rss>"
    )
    url = web.add_route("/feed.xml", rss, {"Content-Type": "application/rss+xml"})
    feed = FeedSpec(url=url, name="t", interval=1)
    options = PipelineOptions(prism_args(streaming=True))
    with beam.Pipeline(options=options) as p:
        items = p | PollFeeds([feed], FAST, duration=4, tick_seconds=1, jitter=0)
        urls = items["items"] | beam.Map(lambda i: i.url)
        assert_that(urls, equal_to([web.url("/a.html"), web.url("/b.html")]))
    polls = [r for r in web.requests if r.path == "/feed.xml"]
    assert len(polls) >= 2, polls
    assert polls[0].status == 200 and "If-None-Match" not in polls[0].headers
    assert all(r.status == 304 and r.headers["If-None-Match"] for r in polls[1:])


def test_a_hosts_feeds_first_poll_one_tick_apart_within_their_interval():
    feeds = [FeedSpec(url=f"http://a.test/{n}.xml", interval=60) for n in range(4)]
    feeds += [FeedSpec(url="http://b.test/x.xml", interval=60)]
    busy = [FeedSpec(url=f"http://c.test/{n}.xml", interval=10) for n in range(5)]
    offsets = first_poll_offsets(feeds + busy, tick=5)
    assert [offsets[f.url] for f in feeds] == [0, 5, 10, 15, 0]  # one per tick, per host
    assert [offsets[f.url] for f in busy] == [0, 2, 4, 6, 8]  # all within the interval


@pytest.mark.runner
def test_feeds_on_one_host_are_polled_host_min_delay_apart(web):
    rss = '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
    headers = {"Content-Type": "application/rss+xml"}
    feeds = [
        FeedSpec(url=web.add_route(f"/feed{n}.xml", rss, headers), name=f"f{n}", interval=1)
        for n in range(3)
    ]
    delay = 0.7
    settings = FetchSettings(
        allow_private_addresses=True, retries=0, timeout=5, host_min_delay=delay
    )
    options = PipelineOptions(prism_args(streaming=True))
    with beam.Pipeline(options=options) as p:  # ticks closer than the delay
        _ = p | PollFeeds(feeds, settings, duration=8, tick_seconds=0.5, jitter=0)
    starts = sorted(r.at for r in web.requests if r.path.startswith("/feed"))
    assert len(starts) >= 6, starts  # each feed polled more than once
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert min(gaps) >= delay - 0.02, gaps


def test_next_due_counts_from_when_the_feed_was_due_not_from_the_poll():
    rng = random.Random(1)
    assert next_due_after(100.0, 104.0, 60.0, 0.0, rng) == 160.0  # 4 s late: not 164
    assert next_due_after(100.0, 190.0, 60.0, 0.0, rng) == 250.0  # an interval behind


def test_the_tick_shortens_for_a_busy_host_and_such_a_host_is_named():
    calm = [FeedSpec(url=f"http://a.test/{n}.xml", interval=60) for n in range(10)]
    assert choose_tick(calm, 2.0) == 2.0  # a poll every 6 s is needed
    busy = [FeedSpec(url=f"http://b.test/{n}.xml", interval=10) for n in range(5)]
    assert choose_tick(calm + busy, 2.0) == pytest.approx(1.6)  # every 2 s: 80% of it
    crowded = [FeedSpec(url=f"http://c.test/{n}.xml", interval=60) for n in range(120)]
    assert choose_tick(calm + crowded, 2.0) == 1.0  # not below a second
    assert warn_about_busy_hosts(calm + busy + crowded, least_gap=1.0) == ["c.test"]


@pytest.mark.runner
def test_a_host_that_must_wait_does_not_hold_up_another_host(web, tmp_path):
    """With a 1 s delay, host A has four feeds due every second and host B one: A's
    waits are spent at later ticks, not asleep (asleep, the run went on for 79 s, as
    every tick's element slept ~4 s for A's due feeds)."""
    rss = '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
    headers = {"Content-Type": "application/rss+xml"}
    with FixtureServer(tmp_path / "b") as other:
        slow = [
            FeedSpec(url=web.add_route(f"/a{n}.xml", rss, headers), name=f"a{n}", interval=1)
            for n in range(4)
        ]
        quick = FeedSpec(url=other.add_route("/b.xml", rss, headers), name="b", interval=1)
        settings = FetchSettings(
            allow_private_addresses=True, retries=0, timeout=5, host_min_delay=1.0
        )
        options = PipelineOptions(prism_args(streaming=True))
        began = time.monotonic()
        with beam.Pipeline(options=options) as p:
            _ = p | PollFeeds([*slow, quick], settings, duration=12, tick_seconds=0.5, jitter=0)
        assert time.monotonic() - began < 30
        a_starts = sorted(r.at for r in web.requests)
        b_starts = sorted(r.at for r in other.requests)
    a_gaps = [b - a for a, b in zip(a_starts, a_starts[1:], strict=False)]
    b_gaps = [b - a for a, b in zip(b_starts, b_starts[1:], strict=False)]
    assert len(a_starts) >= 6 and min(a_gaps) >= 0.98, a_gaps
    # asleep for A's due feeds, B would wait ~4 s (A's four 1 s waits) between polls
    assert len(b_starts) >= 6 and max(b_gaps) < 2.5, (a_starts, b_starts)


def test_a_poll_keeps_validators_of_a_sane_length_only(web):
    rss = '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
    sane = web.add_route("/sane.xml", rss, {"ETag": '"abc"', "Last-Modified": "Mon, 07 Dec 2026"})
    huge = web.add_route("/huge.xml", rss, {"ETag": '"' + "x" * 5000 + '"'})
    session = make_session(FAST)
    kept = poll_feed(session, _feed(sane), FAST)
    assert kept.validators == {"etag": '"abc"', "last-modified": "Mon, 07 Dec 2026"}
    dropped = poll_feed(session, _feed(huge), FAST)
    assert "etag" not in dropped.validators  # not kept in the feed's state
    assert dropped.validators["last-modified"]  # the sane one still is
