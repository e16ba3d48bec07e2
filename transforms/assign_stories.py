"""The stories stage: copies and story ids for articles as they arrive, and one
document per story in ``<prefix>-stories``.

Clustering needs every article of the open stories in one place, so the stream sends
all articles to one key: ``GroupIntoBatches`` (``stories.batch_size`` articles, or
``stories.max_wait_seconds``) feeds a stateful step whose state is the
:class:`~transforms.stories.StoryClusterer` (Beam ``ReadModifyWriteState``, so it is
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

import heapq
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
from transforms.es_client import make_client, scan
from transforms.language import canonical_language
from transforms.settings import ElasticsearchSettings, StoriesSettings
from transforms.sinks import BulkIndexDoFn
from transforms.stories import StoryClusterer, StoryInput, clusterer_of, story_input

log = logging.getLogger(__name__)

ONE_KEY = "stories"
# What clustering reads of an indexed article (the body is the bulk of it).
STORY_FIELDS = [
    "title",
    "title_normalized",
    "body_normalized",
    "source",
    "entities",
    "countries",
    "language",
    "published_at",
    "fetched_at",
    "story_time",
    "story_id",
    "duplicate_of",
    "copy_group",
]
IDS_PER_QUERY = 1000


def arrival_order(article: Article) -> tuple:
    """Return the order clustering sees articles in (as the backfill's pass does)."""
    return (article.story_time, article.fetched_at, article.canonical_url)


def stories_index_name(es: ElasticsearchSettings) -> str:
    """Return the stories index: ``<index_prefix>-stories``."""
    return f"{es.index_prefix}-stories"


def story_action(document: dict[str, Any], index: str, version: int) -> dict[str, Any]:
    """Return the bulk action writing a story's document; the later write wins."""
    return {
        "_op_type": "index",
        "_index": index,
        "_id": document["story_id"],
        "_source": document,
        "version": version,
        "version_type": "external_gte",
    }


def write_version() -> int:
    """Return the external version of a story write: now, in epoch milliseconds."""
    return int(time.time() * 1000)


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def input_of_document(doc_id: str, source: dict[str, Any]) -> StoryInput:
    """Return the clustering input of an indexed article (``_source`` with STORY_FIELDS)."""
    published, fetched = _time(source.get("published_at")), _time(source.get("fetched_at"))
    when = _time(source.get("story_time"))
    if when is None:  # indexed before story_time existed: as Article.story_time
        when = min(published, fetched) if published and fetched else published or fetched
    return StoryInput(
        doc_id=doc_id,
        time=when,
        title_normalized=source.get("title_normalized") or "",
        body_normalized=source.get("body_normalized") or "",
        source=source.get("source") or "",
        title=source.get("title") or "",
        entities=source.get("entities") or {},
        countries=tuple(source.get("countries") or ()),
        language=canonical_language(source.get("language")),  # older documents: "en-gb"
    )


def restore_open_stories(
    clusterer: StoryClusterer, client, alias: str, now: datetime
) -> tuple[int, int]:
    """Read back into ``clusterer`` the stories whose last article is within its window of
    ``now``, with all their articles, in time order (as they were first seen, so their
    vectors come out as before); return (stories, articles) restored."""
    since = (now - clusterer.window).isoformat()
    recent = scan(
        client,
        alias,
        {"query": {"range": {"story_time": {"gte": since}}}, "_source": ["story_id"]},
        ignore_unavailable=True,
    )
    story_ids = sorted({hit["_source"].get("story_id") for hit in recent} - {None})
    chunks = [
        scan_in_time_order(client, alias, {"terms": {"story_id": story_ids[i : i + IDS_PER_QUERY]}})
        for i in range(0, len(story_ids), IDS_PER_QUERY)
    ]
    articles = 0
    for hit in heapq.merge(*chunks, key=_time_order):
        source = hit["_source"]
        clusterer.restore(
            input_of_document(hit["_id"], source), source["story_id"], source.get("copy_group")
        )
        articles += 1
    return len(story_ids), articles


def _time_order(hit: dict[str, Any]) -> tuple:
    return tuple(hit["sort"])


def scan_in_time_order(client, alias: str, query: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Yield the articles of ``alias`` matching ``query`` by (story_time, fetched_at,
    canonical URL): a total order, so a re-run sees them, and names their stories, exactly
    as before. A copy often carries its original's date: the one fetched first leads."""
    yield from scan(
        client,
        alias,
        {
            "query": query,
            "_source": [*STORY_FIELDS, "canonical_url"],
            "sort": [
                {"story_time": {"order": "asc", "missing": "_first"}},
                {"fetched_at": {"order": "asc", "missing": "_first"}},
                {"canonical_url": {"order": "asc"}},
            ],
        },
        preserve_order=True,
        size=500,
        ignore_unavailable=True,
    )


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
