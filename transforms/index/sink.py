"""Write articles to Elasticsearch in bulk, and failures to replayable dead-letter files.

Documents are keyed by a stable hash of the canonical URL (``_id``) and written
with ``index`` (overwrite), so re-running a backfill or restarting a stream never
duplicates. Each document goes to the monthly index of its publish date
(``news-2026.03``; ``news-undated`` without a date) under the ``news`` alias.

Writes are batched per bundle, not by a keyed grouping: a batch is sent when it holds
``batch_size`` documents, when its first document has waited ``max_wait_seconds``,
and when the bundle ends. So documents reach Elasticsearch as they are enriched, in
batch as in streaming, and nothing waits behind a shuffle (a keyed
``GroupIntoBatches`` was a barrier in batch mode and lost whole keys on Prism).

A backfill writes with external versions (the copy's crawl time, ``external_gte``):
when an archive holds several copies of one article, the latest crawl wins whatever
order the workers write them in, and an older copy is counted as superseded.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.utils.windowed_value import WindowedValue

from transforms.batching import BatchingDoFn
from transforms.dead_letters import FAILED, Failure, dead_letter
from transforms.index.bulk import SUPERSEDED, bulk_index, count_wait
from transforms.index.client import make_client
from transforms.index.documents import to_action
from transforms.index.reconcile import INDEXED, SUPERSEDED_COPIES, TO_INDEX
from transforms.settings import ElasticsearchSettings

log = logging.getLogger(__name__)

RECENT_IDS = 100_000  # per writer: ids written lately, to count repeats without a request
# One element sent through the sink at start-up, alone, so that its counters reach the
# runner before real bundles do. Prism (2.77) parks the values of a counter it has not
# seen yet by the counter's id while it asks the worker what the id means, and a second
# bundle reporting the same unseen counter meanwhile overwrites the first one's value: the
# first documents' counts were lost and the run's reconciliation failed with a false gap.
WARM_UP = None
WARM_UP_REASONS = ("unavailable", "rejected_400")  # the sink's usual dead-letter reasons


@dataclasses.dataclass(frozen=True)
class IndexedDoc:
    """One document Elasticsearch accepted: enough to count what landed per source."""

    index: str
    doc_id: str
    source: str | None = None
    publisher: str | None = None


def _better(action: dict[str, Any], kept: dict[str, Any]) -> bool:
    """Return whether ``action`` beats ``kept`` as the copy of one document to write: the
    latest crawl, then the longest body, then the smallest URL (a re-run picks the same;
    without versions the later copy wins a tie, as a re-emitted merge must)."""

    def rank(candidate: dict[str, Any]) -> tuple[int, int]:
        return candidate.get("version", 0), len(candidate["_source"].get("body") or "")

    if rank(action) != rank(kept):
        return rank(action) > rank(kept)
    return action["_source"].get("url", "") <= kept["_source"].get("url", "")


class _Writer:
    """Sends one batch of actions; counts every action once: ``indexed`` (acknowledged),
    ``index_superseded`` (a copy of another in the batch, or older than what is indexed)
    or a dead letter of ``stage`` (counted by ``dead_letter`` as ``failed`` /
    ``<stage>:<reason>``)."""

    def __init__(self, settings: ElasticsearchSettings, namespace: str, stage: str) -> None:
        self.settings = settings
        self.stage = stage
        self.indexed = Metrics.counter(namespace, INDEXED)
        self.superseded = Metrics.counter(namespace, SUPERSEDED_COPIES)
        self.batch_sizes = Metrics.distribution(namespace, "bulk_batch_size")
        self.recent: OrderedDict[str, int] = OrderedDict()

    def register_counters(self, *others) -> None:
        """Report every sink counter once, at zero (see ``WARM_UP``)."""
        failed = [Metrics.counter(FAILED, f"{self.stage}:{r}") for r in WARM_UP_REASONS]
        for counter in (self.indexed, self.superseded, *failed, *others):
            counter.inc(0)

    def connect(self) -> None:
        self.client = make_client(self.settings, retries=0)  # bulk_index retries batches

    def close(self) -> None:
        self.client.close()

    def write(self, batch: list[Any], action_of) -> Iterator[tuple[Any, Any]]:
        """Write ``batch`` (items with ``action_of(item)``); yield (item, IndexedDoc or
        TaggedOutput of a Failure) for each item that was not superseded."""
        fresh = self.prepare(batch, action_of)
        if fresh:
            sent = bulk_index(self.client, [action for _, action in fresh], self.settings)
            yield from self.settle(fresh, *sent)

    def send(self, fresh: list[tuple[Any, dict]], waits: list[float]):
        """``bulk_index`` for another thread: its waits go to ``waits``, not to counters
        (Beam counts only on the bundle's own thread)."""
        return bulk_index(self.client, [a for _, a in fresh], self.settings, waits.append)

    def prepare(self, batch: list[Any], action_of) -> list[tuple[Any, dict]]:
        """Return the (item, action) pairs of ``batch`` that need a request; count the rest
        as superseded."""
        best: dict[str, tuple[Any, dict]] = {}
        for item in batch:
            action = action_of(item)
            kept = best.get(action["_id"])
            if kept is None or _better(action, kept[1]):
                best[action["_id"]] = (item, action)
        # Copies of one document in a batch, and repeats of a write this worker just
        # made at the same version (an archive's duplicate record), need no request.
        fresh = []
        for item, action in best.values():
            version = action.get("version")
            if version is not None and self.recent.get(action["_id"]) == version:
                continue
            fresh.append((item, action))
        self.superseded.inc(len(batch) - len(fresh))
        if fresh:
            self.batch_sizes.update(len(fresh))
        return fresh

    def settle(
        self, fresh: list[tuple[Any, dict]], indexed: int, failed: list[tuple]
    ) -> Iterator[tuple[Any, Any]]:
        """Count what ``bulk_index`` answered for ``fresh``; yield (item, IndexedDoc or
        TaggedOutput of a Failure) for each item that was not superseded."""
        self.indexed.inc(indexed)
        failed_by_id = {action["_id"]: (reason, detail) for action, reason, detail in failed}
        for item, action in fresh:
            outcome = failed_by_id.get(action["_id"])
            if outcome is None:
                self._remember(action)
                source = action["_source"]
                yield (
                    item,
                    IndexedDoc(
                        action["_index"],
                        action["_id"],
                        source.get("source"),
                        source.get("publisher"),
                    ),
                )
            elif outcome[0] == SUPERSEDED:
                self.superseded.inc()
            else:
                url = action["_source"].get("canonical_url", "")
                failure = Failure(self.stage, outcome[0], url, outcome[1], payload=action)
                yield item, dead_letter(failure, logging.ERROR)

    def _remember(self, action: dict[str, Any]) -> None:
        if action.get("version") is None:
            return
        self.recent[action["_id"]] = action["version"]
        self.recent.move_to_end(action["_id"])
        if len(self.recent) > RECENT_IDS:
            self.recent.popitem(last=False)


class BulkIndexDoFn(beam.DoFn):
    """(key, [action]) -> IndexedDoc per written document; the rest go to ``dead_letter``.

    For inputs already grouped into batches (the ingestion-health stats)."""

    def __init__(
        self, settings: ElasticsearchSettings, namespace: str = "wirestream", stage: str = "index"
    ) -> None:
        self.settings = settings
        self.namespace = namespace
        self.stage = stage

    def setup(self) -> None:
        self.writer = _Writer(self.settings, self.namespace, self.stage)
        self.writer.connect()

    def process(self, keyed_batch):
        _, actions = keyed_batch
        for _action, output in self.writer.write(list(actions), lambda action: action):
            yield output

    def teardown(self) -> None:
        self.writer.close()


#: Batches a sink may have in flight while its thread goes on extracting and tagging.
IN_FLIGHT = 1


class IndexArticlesDoFn(BatchingDoFn):
    """Article -> IndexedDoc per written document (if ``emit_indexed``); the rest go to
    ``dead_letter``. Batched per bundle: see the module's docstring.

    A batch is sent by a sender thread while the bundle's thread goes on with the next
    elements (extracting and tagging, fused upstream); at most ``IN_FLIGHT`` batches
    wait for an answer, more make the bundle's thread wait (so an outage still holds
    back the stages feeding the sink). Answers are counted and their outputs emitted on
    the bundle's thread, and the bundle ends only when every batch is answered: the
    counters and the reconciliation see what they saw when sending was synchronous.
    """

    def __init__(
        self, settings: ElasticsearchSettings, versioned: bool, emit_indexed: bool
    ) -> None:
        self.settings = settings
        self.versioned = versioned
        self.emit_indexed = emit_indexed
        self.max_batch = settings.batch_size
        self.max_wait = settings.max_wait_seconds
        self.received = Metrics.counter("wirestream", TO_INDEX)

    def setup(self) -> None:
        self.writer = _Writer(self.settings, "wirestream", "index")
        self.writer.connect()
        self.sender = ThreadPoolExecutor(1, thread_name_prefix="bulk-sender")
        self.in_flight: list[tuple[list[tuple[Any, dict]], list[float], Future]] = []

    def process(self, article, timestamp=beam.DoFn.TimestampParam, window=beam.DoFn.WindowParam):
        if article is WARM_UP:
            self.writer.register_counters(self.received)
            return
        self.received.inc()
        action = to_action(article, self.settings.index_prefix, self.versioned)
        yield from super().process(action, timestamp, window)

    def handle_batch(self, batch: list[WindowedValue]):
        fresh = self.writer.prepare(batch, lambda wv: wv.value)
        if fresh:
            waits: list[float] = []
            self.in_flight.append(
                (fresh, waits, self.sender.submit(self.writer.send, fresh, waits))
            )
        yield from self._settle(keep=IN_FLIGHT)

    def start_bundle(self) -> None:
        super().start_bundle()
        for _fresh, _waits, answer in self.in_flight:  # of a bundle that failed: its
            answer.exception()  # retry writes them again, so only wait for the sender
        self.in_flight.clear()

    def finish_bundle(self):
        yield from super().finish_bundle()
        yield from self._settle(keep=0)

    def _settle(self, keep: int):
        """Wait for the oldest batches until at most ``keep`` are in flight; emit their
        outputs."""
        while len(self.in_flight) > keep:
            fresh, waits, answer = self.in_flight.pop(0)
            indexed, failed = answer.result()
            for seconds in waits:
                count_wait(seconds)
            for held, output in self.writer.settle(fresh, indexed, failed):
                if isinstance(output, beam.pvalue.TaggedOutput):
                    yield beam.pvalue.TaggedOutput(output.tag, held.with_value(output.value))
                elif self.emit_indexed:
                    yield held.with_value(output)

    def teardown(self) -> None:
        self.sender.shutdown(wait=True)
        self.writer.close()


@dataclasses.dataclass(frozen=True)
class WritePolicy:
    """How a job writes its articles.

    ``versioned``: with the copy's crawl time as external version, so the latest crawl of
    an article wins whatever order workers write copies in (a backfill). ``emit_indexed``:
    an ``indexed`` output for the health counts (a backfill has none to feed, so the
    runner need not carry it). ``warm_up``: send ``WARM_UP`` through first, for a job
    whose first documents come in concurrent one-document bundles (a stream on Prism);
    a backfill keeps its read-to-index stage one fused stage, without a Flatten."""

    versioned: bool
    emit_indexed: bool
    warm_up: bool


STREAM = WritePolicy(versioned=False, emit_indexed=True, warm_up=True)
BACKFILL = WritePolicy(versioned=True, emit_indexed=False, warm_up=False)
PLAIN = WritePolicy(versioned=False, emit_indexed=True, warm_up=False)  # tests, one-offs


class WriteToIndex(beam.PTransform):
    """Article -> ``indexed`` (IndexedDoc) and ``dead_letter`` (Failure) outputs, written
    as ``policy`` says (``STREAM``, ``BACKFILL``)."""

    def __init__(self, settings: ElasticsearchSettings, policy: WritePolicy = PLAIN) -> None:
        super().__init__()
        self.settings = settings
        self.policy = policy

    def expand(self, articles):
        if self.policy.warm_up:
            warm_up = articles.pipeline | "WarmUpCounters" >> beam.Create([WARM_UP])
            articles = (articles, warm_up) | "WithWarmUp" >> beam.Flatten()
        write = IndexArticlesDoFn(self.settings, self.policy.versioned, self.policy.emit_indexed)
        return articles | "Bulk" >> beam.ParDo(write).with_outputs("dead_letter", main="indexed")
