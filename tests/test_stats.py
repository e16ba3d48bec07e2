"""Ingestion-health counters: keys, idempotent ids, a Beam run into the real node, and
the real streaming pipeline on Prism against the sample site."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import apache_beam as beam
import pytest

from pipeline.config import FeedSpec
from transforms.article import Article, FeedItem, Page
from transforms.dead_letters import Failure
from transforms.index.sink import IndexedDoc
from transforms.index.templates import install_stats_template
from transforms.stats import (
    StageKey,
    WriteIngestionHealth,
    failed_key,
    fetched_key,
    indexed_key,
    polled_key,
    stats_action,
    stats_id,
)

NOW = datetime(2026, 3, 5, 12, tzinfo=timezone.utc)
ITEM = FeedItem(url="http://www.a.example/x.html", feed_url="http://a.example/f", publisher="a")


def _article(n: int) -> Article:
    return Article(
        url=f"http://a.example/{n}.html",
        canonical_url=f"http://a.example/{n}.html",
        source="a.example",
        feed_url="http://a.example/feed.xml",
        title=f"Story {n}",
        body="Body.",
        fetched_at=NOW,
        publisher="a",
    )


def test_stage_keys_name_stage_and_source_only():
    """Per source, not per feed: a window's documents do not grow with its articles."""
    assert polled_key(ITEM) == StageKey("polled", "a.example")
    page = Page(url=ITEM.url, final_url=ITEM.url, html="", fetched_at=NOW, item=ITEM)
    assert fetched_key(page) == StageKey("fetched", "a.example")
    assert indexed_key(IndexedDoc("news-2026.03", "id", "a.example", "a")) == StageKey(
        "indexed", "a.example"
    )


def test_failed_key_finds_source_and_publisher():
    feeds = {"http://b.example/feed.xml": "b"}
    poll = Failure("poll", "http_500", "http://b.example/feed.xml")
    assert failed_key(poll, feeds) == StageKey("failed", "b.example", "b", "poll", "http_500")
    fetch = Failure("fetch", "timeout", "http://c.example:8080/p.html")
    assert failed_key(fetch, feeds) == StageKey("failed", "c.example:8080", "", "fetch", "timeout")
    payload = {"_source": {"source": "d.example", "publisher": "d"}}
    index = Failure("index", "rejected_400", "http://d.example/p", payload=payload)
    assert failed_key(index, feeds) == StageKey("failed", "d.example", "d", "index", "rejected_400")


def test_stats_ids_are_deterministic_per_window_and_key():
    key = StageKey("indexed", "a.example", "a")
    later = NOW + timedelta(seconds=60)
    assert stats_id(key, NOW) == stats_id(StageKey("indexed", "a.example", "a"), NOW)
    assert stats_id(key, NOW) != stats_id(key, later)
    assert stats_id(key, NOW) != stats_id(key._replace(stage="fetched"), NOW)
    action = stats_action(key, 3, NOW, later, "news-stats")
    assert action["_id"] == stats_id(key, NOW) and action["_index"] == "news-stats"
    assert action["_source"] == {
        "@timestamp": NOW.isoformat(),
        "window_end": later.isoformat(),
        "window_seconds": 60.0,
        "stage": "indexed",
        "source": "a.example",
        "publisher": "a",
        "failed_stage": None,
        "reason": None,
        "count": 3,
    }


def _stats(es_client, index: str) -> list[dict]:
    es_client.indices.refresh(index=index)
    hits = es_client.search(index=index, size=500, query={"match_all": {}})["hits"]["hits"]
    return [h["_source"] for h in hits]


def _totals(docs: list[dict]) -> Counter:
    totals: Counter = Counter()
    for doc in docs:
        totals[(doc["stage"], doc["source"], doc.get("reason"))] += doc["count"]
    return totals


@pytest.fixture
def stats_index(es_client, es_settings):
    index = install_stats_template(es_client, es_settings.elasticsearch, es_settings.stats)
    yield index
    es_client.options(ignore_status=404).indices.delete_index_template(name=f"wirestream-{index}")


@pytest.mark.integration
def test_counts_per_window_land_in_the_stats_index_idempotently(
    es_client, es_settings, stats_index
):
    assert stats_index == f"{es_settings.elasticsearch.index_prefix}-stats"
    feeds = [FeedSpec(url="http://b.example/feed.xml", name="b")]
    failures = [Failure("poll", "http_500", "http://b.example/feed.xml")] * 2

    def run():
        with beam.Pipeline() as pipeline:
            taps = {
                "polled": pipeline | "Items" >> beam.Create([ITEM] * 3),
                "extracted": pipeline | "Articles" >> beam.Create([_article(n) for n in range(4)]),
                "failed": pipeline | "Failures" >> beam.Create(failures),
            }
            dead = taps | WriteIngestionHealth(es_settings.elasticsearch, stats_index, 3600, feeds)
            dead | beam.Map(lambda failure: pytest.fail(f"stats write failed: {failure}"))

    run()
    docs = _stats(es_client, stats_index)
    assert _totals(docs) == {
        ("polled", "a.example", None): 3,
        ("extracted", "a.example", None): 4,
        ("failed", "b.example", "http_500"): 2,
    }
    (failed,) = [d for d in docs if d["stage"] == "failed"]
    assert failed["publisher"] == "b" and failed["failed_stage"] == "poll"
    mapping = es_client.indices.get_mapping(index=stats_index)[stats_index]["mappings"]
    assert mapping["properties"]["count"]["type"] == "long"
    assert stats_index not in es_client.indices.get_alias(index=stats_index)[stats_index].get(
        "aliases", {}
    )
    run()  # the same window again overwrites (unless the hour turned in between)
    assert len(_stats(es_client, stats_index)) in (len(docs), 2 * len(docs))


class SteppingClock:
    """A clock that moves ``step`` seconds at each reading: the elements of one bounded
    run then fall in many wall-clock windows, in the order the runner counts them."""

    def __init__(self, start: float, step: float) -> None:
        self.now, self.step = start, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.mark.integration
def test_each_window_is_written_once_with_its_own_count(es_client, es_settings, stats_index):
    items = [ITEM] * 40  # one key, counted over 40 readings of a clock 25 s apart
    with beam.Pipeline() as pipeline:
        taps = {"polled": pipeline | beam.Create(items)}
        clock = SteppingClock(time.time() + 10 * 86400, 25)  # no window ends during the run
        dead = taps | WriteIngestionHealth(es_settings.elasticsearch, stats_index, 60, clock=clock)
        dead | beam.Map(lambda failure: pytest.fail(f"stats write failed: {failure}"))
    docs = _stats(es_client, stats_index)
    starts = sorted(datetime.fromisoformat(d["@timestamp"]).timestamp() for d in docs)
    assert len(starts) == len(set(starts)) >= 16  # 1,000 s of readings: 17 windows, once each
    assert all(start % 60 == 0 for start in starts)
    assert sum(d["count"] for d in docs) == 40  # a window's count is not carried into the next
    assert max(d["count"] for d in docs) <= 3  # at most 3 readings 25 s apart in 60 s


@pytest.mark.integration
@pytest.mark.runner
def test_stream_writes_health_counts_matching_the_articles(es_client, sample_stream):
    alias, stats_index = sample_stream.alias, sample_stream.stats_index
    es_client.indices.refresh(index=alias)
    articles = es_client.search(
        index=alias, size=0, aggs={"s": {"terms": {"field": "source"}}}, track_total_hits=True
    )
    per_source = {b["key"]: b["doc_count"] for b in articles["aggregations"]["s"]["buckets"]}
    every = _stats(es_client, stats_index)
    docs = [d for d in every if d["stage"] != "source_day"]
    assert docs, "no stats documents"
    assert all(d["window_seconds"] == 5 and d["count"] > 0 for d in docs)
    # and one source-day document per source (one run, one day): its articles and failures
    days = {d["source"]: d for d in every if d["stage"] == "source_day"}
    extracted = Counter()
    for doc in docs:
        if doc["stage"] == "extracted":
            extracted[doc["source"]] += doc["count"]
    assert {s: d["documents"] for s, d in days.items() if d["documents"]} == dict(extracted)
    assert all(
        d["flags"] == [] and d["median_words"] > 150 for d in days.values() if d["documents"]
    )
    per_stage: Counter = Counter()
    indexed: Counter = Counter()
    for doc in docs:
        per_stage[doc["stage"]] += doc["count"]
        if doc["stage"] == "indexed":
            indexed[doc["source"]] += doc["count"]
    # every article landed once per canonical URL; the stats saw at least that many writes
    assert set(indexed) == set(per_source)
    assert all(indexed[s] >= n for s, n in per_source.items())
    assert per_stage["polled"] >= per_stage["fetched"] >= per_stage["extracted"]
    assert per_stage["extracted"] >= per_stage["indexed"] >= articles["hits"]["total"]["value"]
    # the missing feed is counted as a failure, under its source and feed name
    failed = {
        (d["publisher"], d["failed_stage"], d["reason"]) for d in docs if d["stage"] == "failed"
    }
    assert ("gone", "poll", "http_404") in failed, failed
    # windows are aligned to the configured width
    starts = {d["@timestamp"] for d in docs}
    assert all(datetime.fromisoformat(s).timestamp() % 5 == 0 for s in starts)
