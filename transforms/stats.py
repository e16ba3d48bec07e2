"""Ingestion health: how many items each stage handled, per source, per time window.

Every stage's output and every dead letter is tapped and reduced to a ``StageKey``
(stage, source, publisher, and for failures the failed stage and reason), stamped
counted in keyed state per wall-clock window (so no count is ever late data, and the
state holds one window), and written as one document per (window, key) with a
deterministic ``_id`` to the stats index, through the same bulk writer as the articles.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.coders import FloatCoder, VarIntCoder
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
from apache_beam.utils.timestamp import Timestamp

from transforms.article import Article, FeedItem, Page
from transforms.dates import from_epoch
from transforms.dead_letters import Failure
from transforms.index.sink import BulkIndexDoFn, IndexedDoc
from transforms.settings import ElasticsearchSettings, FeedSpec
from transforms.urls import source_domain

STAGES = ("polled", "fetched", "extracted", "indexed", "failed")


class StageKey(NamedTuple):
    """What one counted element was: a stage's output, or a failure and its reason."""

    stage: str
    source: str
    publisher: str = ""
    failed_stage: str = ""
    reason: str = ""


# A stage's count is kept per source (domain), not per feed: a window then holds at most
# stages x sources documents however many articles pass (per feed, most windows would
# hold one article each, a document per article and stage). Failures keep the feed.


def polled_key(item: FeedItem) -> StageKey:
    """Return the key of an item read from a feed."""
    return StageKey("polled", source_domain(item.url))


def fetched_key(page: Page) -> StageKey:
    """Return the key of a downloaded page (source of the item URL, as fetch failures use)."""
    return StageKey("fetched", source_domain(page.item.url))


def extracted_key(article: Article) -> StageKey:
    """Return the key of an extracted article (source of its canonical URL)."""
    return StageKey("extracted", article.source)


def indexed_key(doc: IndexedDoc) -> StageKey:
    """Return the key of a document Elasticsearch accepted."""
    return StageKey("indexed", doc.source or "")


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


#: A window is written this long after it ends, so that a worker whose clock runs a
#: little behind the runner's does not count into a window already written.
CLOCK_MARGIN = 2.0


class CountPerWindowDoFn(beam.DoFn):
    """(StageKey tuple, _) -> (window start, StageKey tuple, count), once per wall-clock
    window the key was seen in, in the global window.

    The window is read from the clock here, where the count is kept, so nothing arrives
    for a window already written and nothing is ever late (event-time windows would drop
    the last writes of a run as late data). A key holds the count of its current window
    only: it is written when the window ends (a wall-clock timer), when the key's next
    element falls in a later window, or when the input ends, and then cleared. So the
    state holds the keys seen in the last window (stages x sources x failure reasons),
    however long the run, and each (window, key) is written once.
    """

    WINDOW = ReadModifyWriteStateSpec("window", FloatCoder())
    COUNT = CombiningValueStateSpec("count", VarIntCoder(), CountCombineFn())
    FLUSH = TimerSpec("flush", TimeDomain.REAL_TIME)
    END = TimerSpec("end", TimeDomain.WATERMARK)

    def __init__(self, width: float, clock: Callable[[], float] = time.time) -> None:
        self.width = width
        self.clock = clock

    def process(
        self,
        element,
        held=beam.DoFn.StateParam(WINDOW),
        count=beam.DoFn.StateParam(COUNT),
        flush=beam.DoFn.TimerParam(FLUSH),
        end=beam.DoFn.TimerParam(END),
    ):
        key, _ = element
        start = window_start(self.clock(), self.width)
        previous = held.read()
        if previous != start:
            if previous is not None:
                yield previous, key, count.read()
                count.clear()
            held.write(start)
            flush.set(Timestamp(seconds=start + self.width + CLOCK_MARGIN))
            end.set(GlobalWindow().max_timestamp())
        count.add(1)

    @on_timer(FLUSH)
    def on_flush(
        self,
        key=beam.DoFn.KeyParam,
        held=beam.DoFn.StateParam(WINDOW),
        count=beam.DoFn.StateParam(COUNT),
        end=beam.DoFn.TimerParam(END),
    ):
        yield from self._write(key, held, count)
        end.clear()

    @on_timer(END)
    def on_end(
        self,
        key=beam.DoFn.KeyParam,
        held=beam.DoFn.StateParam(WINDOW),
        count=beam.DoFn.StateParam(COUNT),
        flush=beam.DoFn.TimerParam(FLUSH),
    ):
        flush.clear()  # a pending wall-clock timer would hold the end of a bounded run
        yield from self._write(key, held, count)

    @staticmethod
    def _write(key, held, count):
        start = held.read()
        if start is not None:
            yield start, key, count.read()
        held.clear()
        count.clear()


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
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.es = es
        self.index = index
        self.window_seconds = window_seconds
        self.clock = clock
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
            | "KeyByStage" >> beam.Map(lambda key: (tuple(key), 1))
            | "CountPerWindow" >> beam.ParDo(CountPerWindowDoFn(width, self.clock))
            | "ToAction"
            >> beam.MapTuple(
                lambda start, key, count: stats_action(
                    StageKey(*key), count, from_epoch(start), from_epoch(start + width), index
                )
            )
            | "OneWriterKey" >> beam.Map(lambda action: (0, action))
            | "Batch" >> beam.GroupIntoBatches(500, max_buffering_duration_secs=width)
            | "Bulk"
            >> beam.ParDo(BulkIndexDoFn(self.es, "wirestream.stats", "stats")).with_outputs(
                "dead_letter", main="indexed"
            )
        ).dead_letter
