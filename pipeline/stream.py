"""The streaming pipeline, top to bottom: poll -> dedupe -> fetch -> extract ->
normalise -> tag entities -> write to Elasticsearch; every stage's failures go to
one dead-letter sink.
"""

from __future__ import annotations

import apache_beam as beam

from pipeline.config import Settings
from transforms.enrich import TagEntities
from transforms.extract import ExtractArticles
from transforms.feeds import DropSeenItems, PollFeeds
from transforms.fetch import FetchPages
from transforms.normalize import NormalizeArticles
from transforms.sinks import WriteDeadLetters, WriteToElasticsearch


def build_stream(pipeline: beam.Pipeline, settings: Settings, duration: float | None) -> None:
    """Add the streaming ingestion to ``pipeline``; it stops after ``duration`` seconds if set."""
    polled = pipeline | "PollFeeds" >> PollFeeds(settings.feeds, settings.fetch, duration)
    pages = (
        polled["items"]
        | "DropSeenItems" >> DropSeenItems(settings.stream.dedupe_ttl_hours * 3600)
        | "FetchPages" >> FetchPages(settings.fetch)
    )
    articles = pages.pages | "ExtractArticles" >> ExtractArticles()
    index_failures = (
        articles.articles
        | "NormalizeText" >> NormalizeArticles()
        | "TagEntities" >> TagEntities(settings.enrich)
        | "WriteToElasticsearch" >> WriteToElasticsearch(settings.elasticsearch)
    )
    (
        (polled["dead_letter"], pages.dead_letter, articles.dead_letter, index_failures)
        | "AllFailures" >> beam.Flatten()
        | "WriteDeadLetters" >> WriteDeadLetters(settings.dead_letter_dir)
    )
