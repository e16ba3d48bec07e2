"""The stories stage: copies and story ids for articles as they arrive, and one
document per story in ``<prefix>-stories``.

Clustering needs every article of the open stories in one place, so the stream sends
all articles to one key: ``GroupIntoBatches`` (``stories.batch_size`` articles, or
``stories.max_wait_seconds``) feeds a stateful step whose state is the
:class:`~transforms.story_clustering.StoryClusterer` (Beam ``ReadModifyWriteState``, so it is
checkpointed with the job on Flink). One serial step is the design, not a limit met
by accident: clustering takes about a millisecond per article (``bench/stories.py``)
against tens of milliseconds for entity tagging, so one core keeps up with dozens of
tagging ones. Memory follows the open stories: a story and its members are forgotten
a window after its last article.

When the state is empty (a new or restarted stream), the step first reads back the
stories still open, with every article in them, from the index (their stored
``story_id`` and ``copy_group``), so a restart neither splits a story nor renames it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.metrics import Metrics
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec

from transforms.article import Article
from transforms.index.client import make_client
from transforms.index.documents import story_action, write_version
from transforms.index.names import stories_index_name
from transforms.index.reads import restore_open_stories
from transforms.index.sink import BulkIndexDoFn
from transforms.settings import ElasticsearchSettings, StoriesSettings
from transforms.story_clustering import StoryClusterer, clusterer_of, story_input

log = logging.getLogger(__name__)

ONE_KEY = "stories"


def arrival_order(article: Article) -> tuple:
    """Return the order clustering sees articles in (as the backfill's pass does)."""
    return (article.story_time, article.fetched_at, article.canonical_url)


class AssignStoriesDoFn(beam.DoFn):
    """(key, [Article]) -> each Article with ``story_id``, ``duplicate_of`` and
    ``copy_group``; the batch's changed stories go to the ``stories`` output as one
    (key, [bulk action]) batch."""

    CLUSTERER = ReadModifyWriteStateSpec("clusterer", PickleCoder())

    def __init__(self, settings: StoriesSettings, es: ElasticsearchSettings) -> None:
        self.settings = settings
        self.es = es
        self.index = stories_index_name(es)
        self.started = Metrics.counter("wirestream", "stories_started")
        self.joined = Metrics.counter("wirestream", "stories_joined")
        self.copies = Metrics.counter("wirestream", "copies_found")
        self.open = Metrics.distribution("wirestream", "stories_open")
        self.batch_ms = Metrics.distribution("wirestream", "stories_batch_ms")

    def process(self, element, state=beam.DoFn.StateParam(CLUSTERER)) -> Iterator[Any]:
        _, articles = element
        started = time.perf_counter()
        clusterer = state.read()
        if clusterer is None:
            clusterer = self._fresh()
        for article in sorted(articles, key=arrival_order):
            assigned = clusterer.assign(story_input(article))
            if assigned.story_id == article.doc_id:
                self.started.inc()
            else:
                self.joined.inc()
            if assigned.duplicate_of:
                self.copies.inc()
            yield article.replace(
                story_id=assigned.story_id,
                duplicate_of=assigned.duplicate_of,
                copy_group=assigned.copy_group,
            )
        state.write(clusterer)
        self.open.update(clusterer.open_stories())
        self.batch_ms.update(int((time.perf_counter() - started) * 1000))
        version = write_version()
        actions = [story_action(doc, self.index, version) for doc in clusterer.take_touched()]
        if actions:
            yield beam.pvalue.TaggedOutput("stories", (ONE_KEY, actions))

    def _fresh(self) -> StoryClusterer:
        """Return a clusterer holding the stories still open in the index (see module doc)."""
        clusterer = clusterer_of(self.settings)
        client = make_client(self.es)
        try:
            stories, articles = restore_open_stories(
                clusterer, client, self.es.alias, datetime.now(timezone.utc)
            )
        except Exception as exc:  # an outage must not stop the stream: start afresh
            Metrics.counter("wirestream", "stories_restore_failed").inc()
            log.warning("could not read the open stories back (%s); starting with none", exc)
            return clusterer_of(self.settings)
        finally:
            client.close()
        if stories:
            log.info("stories: %d open stories (%d articles) read back", stories, articles)
        return clusterer


class AssignStories(beam.PTransform):
    """Article -> ``articles`` (with story fields) and ``dead_letter`` (failed story
    documents); writes the stories index. A no-op when ``settings.enabled`` is false."""

    def __init__(self, settings: StoriesSettings, es: ElasticsearchSettings) -> None:
        super().__init__()
        self.settings = settings
        self.es = es

    def expand(self, articles):
        pipeline = articles.pipeline
        if not self.settings.enabled:
            return {"articles": articles, "dead_letter": pipeline | "NoFailures" >> beam.Create([])}
        assigned = (
            articles
            | "OneKey" >> beam.Map(lambda article: (ONE_KEY, article))
            | "Batch"
            >> beam.GroupIntoBatches(
                self.settings.batch_size, max_buffering_duration_secs=self.settings.max_wait_seconds
            )
            | "Assign"
            >> beam.ParDo(AssignStoriesDoFn(self.settings, self.es)).with_outputs(
                "stories", main="articles"
            )
        )
        written = assigned.stories | "WriteStories" >> beam.ParDo(
            BulkIndexDoFn(self.es, "wirestream.stories", "stories")
        ).with_outputs("dead_letter", main="indexed")
        return {"articles": assigned.articles, "dead_letter": written.dead_letter}
