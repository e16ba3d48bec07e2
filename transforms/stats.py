"""Ingestion health: how many items each stage handled, per source, per time window.

Every stage's output and every dead letter is tapped and reduced to a ``StageKey``
(stage, source, publisher, and for failures the failed stage and reason), stamped
with the wall-clock window it passed the tap in, counted in keyed state (so no
count is ever late data), and written as one document per (window, key) with a deterministic
``_id`` to the stats index, through the same bulk writer as the articles.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.coders import BooleanCoder, VarIntCoder
from apache_beam.transforms import window
from apache_beam.transforms.combiners import CountCombineFn
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import (
    CombiningValueStateSpec,
    ReadModifyWriteStateSpec,
    TimerSpec,
    on_timer,
)
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import Duration, Timestamp

from transforms.article import Article, FeedItem, Page
from transforms.dead_letters import Failure
from transforms.settings import ElasticsearchSettings, FeedSpec
from transforms.sinks import BulkIndexDoFn, IndexedDoc
from transforms.urls import source_domain

STAGES = ("polled", "fetched", "extracted", "indexed", "failed")


class StageKey(NamedTuple):
    """What one counted element was: a stage's output, or a failure and its reason."""

    stage: str
    source: str
    publisher: str = ""
    failed_stage: str = ""
    reason: str = ""


def polled_key(item: FeedItem) -> StageKey:
    """Return the key of an item read from a feed."""
    return StageKey("polled", source_domain(item.url), item.publisher)


def fetched_key(page: Page) -> StageKey:
    """Return the key of a downloaded page (source of the item URL, as fetch failures use)."""
    return StageKey("fetched", source_domain(page.item.url), page.item.publisher)


def extracted_key(article: Article) -> StageKey:
    """Return the key of an extracted article (source of its canonical URL)."""
    return StageKey("extracted", article.source, article.publisher)


def indexed_key(doc: IndexedDoc) -> StageKey:
    """Return the key of a document Elasticsearch accepted."""
    return StageKey("indexed", doc.source or "", doc.publisher or "")


def failed_key(failure: Failure, publishers: Mapping[str, str]) -> StageKey:
    """Return the key of a dead letter; ``publishers`` maps feed URLs to feed names."""
    source = publisher = None
    if failure.payload:  # index failures carry the document
        document = failure.payload.get("_source") or {}
        source, publisher = document.get("source"), document.get("publisher")
    return StageKey(
        "failed",
        source or source_domain(failure.url),
        publisher or publishers.get(failure.url, ""),
        failure.stage,
        failure.reason,
    )


def stats_id(key: StageKey, window_start: datetime) -> str:
    """Return the ``_id`` of a window's count: the same window and key give the same id."""
    text = "|".join((window_start.isoformat(), *key))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def stats_action(
    key: StageKey, count: int, start: datetime, end: datetime, index: str
) -> dict[str, Any]:
    """Return the bulk ``index`` action of one (window, key) count."""
    document = {
        "@timestamp": start.isoformat(),
        "window_end": end.isoformat(),
        "window_seconds": (end - start).total_seconds(),
        **{field: value or None for field, value in key._asdict().items()},
        "count": count,
    }
    return {"_op_type": "index", "_index": index, "_id": stats_id(key, start), "_source": document}


def _utc(timestamp) -> datetime:
    return datetime.fromtimestamp(float(timestamp), tz=timezone.utc)


class CountPerWindowDoFn(beam.DoFn):
    """((window start, StageKey), _) -> (window start, StageKey, running count), in the
    global window.

    Counting happens in keyed state rather than in event-time windows: the wall-clock
    window an element falls in is part of the key, so nothing is ever late (event-time
    windows would drop the last writes of a run as late data). The running total is
    emitted at most once per ``flush_seconds`` and when the input ends; each emission
    overwrites the document of that (window, key), so the last one wins with the total.
    """

    COUNT = CombiningValueStateSpec("count", VarIntCoder(), CountCombineFn())
    PENDING = ReadModifyWriteStateSpec("pending", BooleanCoder())
    FLUSH = TimerSpec("flush", TimeDomain.REAL_TIME)
    END = TimerSpec("end", TimeDomain.WATERMARK)

    def __init__(self, flush_seconds: float) -> None:
        self.flush_seconds = flush_seconds

    def process(
        self,
        element,
        count=beam.DoFn.StateParam(COUNT),
        pending=beam.DoFn.StateParam(PENDING),
        flush=beam.DoFn.TimerParam(FLUSH),
        end=beam.DoFn.TimerParam(END),
    ):
        count.add(1)
        if not pending.read():
            pending.write(True)
            flush.set(Timestamp.now() + Duration(self.flush_seconds))
            end.set(GlobalWindow().max_timestamp())

    @on_timer(FLUSH)
    def on_flush(
        self,
        key=beam.DoFn.KeyParam,
        count=beam.DoFn.StateParam(COUNT),
        pending=beam.DoFn.StateParam(PENDING),
    ):
        pending.clear()
        yield (*key, count.read())

    @on_timer(END)
    def on_end(
        self,
        key=beam.DoFn.KeyParam,
        count=beam.DoFn.StateParam(COUNT),
        flush=beam.DoFn.TimerParam(FLUSH),
    ):
        flush.clear()  # a pending wall-clock timer would hold the end of a bounded run
        yield (*key, count.read())


def window_start(now: float, width: float) -> float:
    """Return the start (epoch seconds) of the ``width``-second window holding ``now``."""
    return now - (now % width)


class WriteIngestionHealth(beam.PTransform):
    """{stage: PCollection} -> dead letters of the stats writes (in the global window).

    ``stage`` is one of ``STAGES``: FeedItems for polled, Pages for fetched, Articles for
    extracted, IndexedDocs for indexed, Failures for failed.
    """

    def __init__(
        self,
        es: ElasticsearchSettings,
        index: str,
        window_seconds: float,
        feeds: list[FeedSpec] | None = None,
    ) -> None:
        super().__init__()
        self.es = es
        self.index = index
        self.window_seconds = window_seconds
        self.publishers = {feed.url: feed.name for feed in feeds or []}

    def _keyer(self, stage: str) -> Callable[[Any], StageKey]:
        if stage == "failed":
            publishers = self.publishers

            def keyed(failure: Failure) -> StageKey:
                return failed_key(failure, publishers)

            return keyed
        keyers: dict[str, Callable[[Any], StageKey]] = {
            "polled": polled_key,
            "fetched": fetched_key,
            "extracted": extracted_key,
            "indexed": indexed_key,
        }
        return keyers[stage]

    def expand(self, taps: dict[str, beam.PCollection]):
        unknown = set(taps) - set(STAGES)
        if unknown:
            raise ValueError(f"unknown stages {sorted(unknown)}; expected some of {STAGES}")
        width, index = self.window_seconds, self.index
        keys = [
            taps[stage] | f"Key {stage}" >> beam.Map(self._keyer(stage))
            for stage in STAGES
            if stage in taps
        ]
        return (
            keys
            | "AllStages" >> beam.Flatten()
            # Counted in wall-clock windows kept in keyed state: see CountPerWindowDoFn.
            | "InGlobalWindow" >> beam.WindowInto(window.GlobalWindows())
            | "KeyByWindow"
            >> beam.Map(lambda key: ((window_start(time.time(), width), tuple(key)), 1))
            | "CountPerKey" >> beam.ParDo(CountPerWindowDoFn(flush_seconds=width))
            | "ToAction"
            >> beam.MapTuple(
                lambda start, key, count: stats_action(
                    StageKey(*key), count, _utc(start), _utc(start + width), index
                )
            )
            | "OneWriterKey" >> beam.Map(lambda action: (0, action))
            | "Batch" >> beam.GroupIntoBatches(500, max_buffering_duration_secs=width)
            | "Bulk"
            >> beam.ParDo(BulkIndexDoFn(self.es, "wirestream.stats", "stats")).with_outputs(
                "dead_letter", main="indexed"
            )
        ).dead_letter
