"""One article, one document: items pass once per feed, and articles carry every feed."""

from collections import Counter
from datetime import datetime, timezone

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.utils.timestamp import Timestamp

from pipeline.services.runners import prism_args
from transforms.article import Article, FeedItem
from transforms.dedupe import (
    DEDUPE_SHARDS,
    DropSeenItems,
    MergeFeeds,
    dedupe_shard,
    live_entries,
    merge_feeds,
)

FETCHED = datetime(2026, 3, 3, tzinfo=timezone.utc)


def _article(feed, published=None, url="https://news.example/a?utm_source=x"):
    return Article(
        url=url,
        canonical_url="https://news.example/a",
        source="news.example",
        feed_url=feed,
        feed_urls=[feed],
        title="t",
        body="b",
        fetched_at=FETCHED,
        published_at=published,
    )


def test_merge_feeds_unions_feeds_and_keeps_first_date():
    march = datetime(2026, 3, 1, tzinfo=timezone.utc)
    first, state = merge_feeds(_article("f1", published=march), {})
    assert first.feed_urls == ["f1"] and state["feeds"] == ["f1"]
    second, state = merge_feeds(_article("f2", published=datetime(2026, 4, 1)), state)
    assert second.feed_urls == ["f1", "f2"] and second.feed_url == "f1"
    assert second.published_at == march  # same monthly index as the first copy
    again, _ = merge_feeds(_article("f1"), state)
    assert again.feed_urls == ["f1", "f2"]


def test_merge_feeds_keeps_an_undated_first_copy_undated():
    _, state = merge_feeds(_article("f1"), {})
    second, _ = merge_feeds(_article("f2", published=FETCHED), state)
    assert second.published_at is None


def _options():
    return PipelineOptions(prism_args(streaming=True))


@pytest.mark.runner
def test_drop_seen_items_passes_each_feed_once_on_prism():
    def item(url, feed):
        return FeedItem(url=url, feed_url=feed)

    stream = (
        TestStream()
        .advance_watermark_to(Timestamp(1000))
        .add_elements([item("a", "f1"), item("a", "f1"), item("a", "f2"), item("b", "f1")])
        .advance_processing_time(5)
        .add_elements([item("a", "f2"), item("b", "f1")])
        .advance_watermark_to_infinity()
    )
    with beam.Pipeline(options=_options()) as p:
        seen = (
            p | stream | DropSeenItems(ttl_seconds=3600) | beam.Map(lambda i: (i.url, i.feed_url))
        )
        assert_that(seen, equal_to([("a", "f1"), ("a", "f2"), ("b", "f1")]))


@pytest.mark.runner
def test_merge_feeds_on_prism_records_both_feeds():
    stream = (
        TestStream()
        .advance_watermark_to(Timestamp(1000))
        .add_elements([_article("https://one.example/rss")])
        .advance_processing_time(5)
        .add_elements([_article("https://two.example/atom", url="https://news.example/a")])
        .advance_watermark_to_infinity()
    )
    with beam.Pipeline(options=_options()) as p:
        merged = p | stream | MergeFeeds(ttl_seconds=3600) | beam.Map(lambda a: a.feed_urls)
        assert_that(
            merged,
            equal_to(
                [
                    ["https://one.example/rss"],
                    ["https://one.example/rss", "https://two.example/atom"],
                ]
            ),
        )


@pytest.mark.integration
@pytest.mark.runner
def test_same_article_from_two_feeds_is_one_document(es_client, es_settings):
    from transforms.index.sink import WriteToIndex

    stream = (
        TestStream()
        .advance_watermark_to(Timestamp(1000))
        .add_elements([_article("https://one.example/rss", published=FETCHED)])
        .advance_processing_time(5)
        .advance_watermark_to(Timestamp(1005))
        .add_elements([_article("https://two.example/atom", url="https://news.example/a")])
        .advance_processing_time(5)
        .advance_watermark_to_infinity()
    )
    with beam.Pipeline(options=_options()) as p:
        _ = p | stream | MergeFeeds(3600) | WriteToIndex(es_settings.elasticsearch)
    alias = es_settings.elasticsearch.alias
    es_client.indices.refresh(index=alias)
    hits = es_client.search(index=alias, query={"match_all": {}})["hits"]["hits"]
    (doc,) = [h["_source"] for h in hits]
    assert doc["feed_urls"] == ["https://one.example/rss", "https://two.example/atom"]
    assert doc["canonical_url"] == "https://news.example/a"


@pytest.mark.runner
def test_merge_feeds_forgets_an_article_after_the_ttl_on_prism():
    stream = (
        TestStream()
        .advance_watermark_to(Timestamp(1000))
        .add_elements([_article("https://one.example/rss")])
        .advance_watermark_to(Timestamp(1000 + 7200))  # past the TTL: the state is cleared
        .add_elements([_article("https://two.example/atom")])
        .advance_watermark_to_infinity()
    )
    with beam.Pipeline(options=_options()) as p:
        merged = p | stream | MergeFeeds(ttl_seconds=3600) | beam.Map(lambda a: a.feed_urls)
        assert_that(merged, equal_to([["https://one.example/rss"], ["https://two.example/atom"]]))


@pytest.mark.runner
def test_drop_seen_items_forgets_a_url_after_the_ttl_on_prism():
    stream = (
        TestStream()
        .advance_watermark_to(Timestamp(1000))
        .add_elements([FeedItem(url="a", feed_url="f1"), FeedItem(url="b", feed_url="f1")])
        .advance_watermark_to(Timestamp(1000 + 7200))  # past the TTL: the shards are emptied
        .add_elements([FeedItem(url="a", feed_url="f1")])
        .advance_watermark_to_infinity()
    )
    with beam.Pipeline(options=_options()) as p:
        seen = p | stream | DropSeenItems(ttl_seconds=3600) | beam.Map(lambda i: i.url)
        assert_that(seen, equal_to(["a", "b", "a"]))


def test_the_dedupe_steps_are_keyed_by_a_bounded_number_of_shards():
    """A runner may keep an entry per key it ever saw (Prism does): 20,000 URLs make at
    most DEDUPE_SHARDS keys, each holding a handful of URLs."""
    urls = [f"https://news{n % 50}.example/2026/12/{n}.html" for n in range(20_000)]
    shards = Counter(dedupe_shard(url) for url in urls)
    assert len(shards) <= DEDUPE_SHARDS and max(shards.values()) < 20, shards.most_common(3)


def test_a_shard_forgets_each_url_at_its_own_time():
    entries = {"a": {"feeds": ["f1"], "until": 10.0}, "b": {"feeds": ["f1"], "until": 20.0}}
    assert live_entries(entries, 15.0) == {"b": {"feeds": ["f1"], "until": 20.0}}
    assert live_entries(entries, 20.0) == {}
