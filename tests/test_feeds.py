"""Feeds: real saved feeds parse, malformed ones keep their items, polls are conditional,
and already-seen items are dropped in the pipeline."""

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.utils.timestamp import Timestamp

from pipeline.config import FeedSpec, FetchSettings
from pipeline.runners import prism_args
from transforms.article import FeedItem
from transforms.feeds import DropSeenItems, parse_feed, poll_feed
from transforms.fetch import make_session


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
    assert parsed.items
    assert all("\ufffd" not in i.title for i in parsed.items[:5]) or parsed.degraded


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
    from pipeline.sample_site import feed_urls

    settings = FetchSettings(allow_private_addresses=True, retries=0, timeout=5)
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
