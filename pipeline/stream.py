"""The streaming pipeline, top to bottom: poll feeds and sitemaps -> skip items before
``stream.since`` -> dedupe -> skip what is indexed -> fetch -> extract -> normalise -> tag
entities -> assign stories -> write to Elasticsearch; every stage's failures go to one
dead-letter sink, and every stage's throughput is counted per source and window into
the ingestion-health index.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import apache_beam as beam

from pipeline.config import Settings
from pipeline.job import Job, JobEnd
from transforms.assign_stories import AssignStories
from transforms.dead_letters import WriteDeadLetters
from transforms.dedupe import DropSeenItems, MergeFeeds
from transforms.enrich import TagEntities
from transforms.extract import ExtractArticles
from transforms.feeds import PollFeeds
from transforms.fetch import FetchPages
from transforms.index.names import stats_index_name
from transforms.index.sink import STREAM, WriteToIndex
from transforms.normalize import NormalizeArticles
from transforms.source_health import TrackSourceHealth
from transforms.sources.resume import SkipIndexedItems
from transforms.sources.selection import SkipItemsBefore
from transforms.stats import WriteIngestionHealth


def build_stream(
    pipeline: beam.Pipeline,
    settings: Settings,
    duration: float | None,
    stop_marker: str | None = None,
) -> None:
    """Add the streaming ingestion to ``pipeline``; it stops after ``duration`` seconds if
    set, and stops polling once ``stop_marker`` exists (``transforms.lifecycle``)."""
    stream = settings.stream
    ttl = stream.dedupe_ttl_hours * 3600
    polled = pipeline | "PollFeeds" >> PollFeeds(
        settings.sources,
        settings.fetch,
        duration,
        stream.poll_tick_seconds,
        stream.poll_jitter,
        stop_marker,
        stream.feed_backoff_max_seconds,
        stream.adapt_intervals,
    )
    pages = (
        polled["items"]
        | "SkipItemsBefore" >> SkipItemsBefore(stream.since)
        | "DropSeenItems" >> DropSeenItems(ttl)
        | "SkipIndexed" >> SkipIndexedItems(settings.elasticsearch, stream.resume)
        | "FetchPages" >> FetchPages(settings.fetch)
    )
    articles = pages.pages | "ExtractArticles" >> ExtractArticles(settings.extract.backend)
    stories = (
        articles.articles
        | "MergeFeeds" >> MergeFeeds(ttl)
        | "NormalizeText" >> NormalizeArticles(settings.max_body_chars)
        | "TagEntities" >> TagEntities(settings.enrich)
        | "AssignStories" >> AssignStories(settings.stories, settings.elasticsearch)
    )
    written = stories["articles"] | "WriteToIndex" >> WriteToIndex(settings.elasticsearch, STREAM)
    failures = (
        polled["dead_letter"],
        pages.dead_letter,
        articles.dead_letter,
        stories["dead_letter"],
        written.dead_letter,
    ) | "AllFailures" >> beam.Flatten()
    if settings.stats.enabled:  # per-source counts of every stage, per time window
        health = {
            "polled": polled["items"],
            "fetched": pages.pages,
            "extracted": articles.articles,
            "indexed": written.indexed,
            "failed": failures,
        } | "IngestionHealth" >> WriteIngestionHealth(
            settings.elasticsearch,
            stats_index_name(settings.elasticsearch, settings.stats),
            settings.stats.window_seconds,
            settings.sources,
        )
        quality = (articles.articles, failures) | "SourceHealth" >> TrackSourceHealth(
            settings.elasticsearch,
            stats_index_name(settings.elasticsearch, settings.stats),
            run=uuid.uuid4().hex[:12],
            every=settings.stats.window_seconds,
        )
        failures = (failures, health, quality) | "AndStatsFailures" >> beam.Flatten()
    failures | "WriteDeadLetters" >> WriteDeadLetters(settings.dead_letter_dir)


def stream_job(settings: Settings, duration: float | None) -> Job:
    """Return the stream as a job (``pipeline.job``): it runs until ``duration`` ends or
    a stop request drains it, showing the documents in the index as it goes."""
    from pipeline.progress import StreamProgress
    from transforms.lifecycle import clear_stop, request_stop, stop_marker_path

    if not settings.sources:
        raise SystemExit(
            "error: no feeds configured (add 'feeds:', 'feeds_files:' or 'sitemaps:' to the "
            "profile; `wirestream feeds discover URL` finds a site's)"
        )
    marker = stop_marker_path(settings.dead_letter_dir)  # how a stop reaches every worker

    @contextlib.contextmanager
    def around() -> Iterator:
        try:
            with StreamProgress(settings, duration) as progress:
                yield progress.tick
        finally:
            clear_stop(marker)

    return Job(
        "stream",
        settings,
        lambda pipeline: build_stream(pipeline, settings, duration, marker),
        JobEnd(),
        grace=settings.elasticsearch.max_wait_seconds + settings.fetch.timeout + 5,
        around=around,
        on_drain=lambda: request_stop(marker),
    )
