"""Source health: what each source yields, per day, and when that drifts.

Counting items per stage (``transforms.stats``) says a source "succeeds" while its pages
lose their bodies or authors after a redesign, or turn into bot walls. Here every
extracted article and every fetch or extraction failure of a source updates that
source's keyed state: the day's counts (documents, without author/date/title, short
bodies, walls, failure reasons, extractors, languages, body-length histogram) and its
last 10 pages, tested against a baseline of the pages before them (``drift_flags``).
When the last pages leave the baseline for 3 pages in a row (authors 90% -> 10%, median
words halved, most pages without a body, walls appearing) the source is flagged, naming
the signal, both values and since when; the baseline of a flagged signal is held until
the source recovers, so a lasting breakage stays flagged. One document per (source,
day, run) goes to the stats index (``stage: source_day``), rewritten as the day goes
on: at once when a flag or the day's first wall appears, else once per stats window.

State per source: the day's counts (bounded sets of keys: failure reasons, extractors,
languages, 24 length buckets), the last 10 pages' signals and a baseline of 5 means,
~2 KB; one key per source seen.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import apache_beam as beam
from apache_beam.coders import BooleanCoder, StrUtf8Coder
from apache_beam.metrics import Metrics
from apache_beam.transforms import window
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import Timestamp

from transforms.article import Article
from transforms.dead_letters import Failure
from transforms.index.sink import BulkIndexDoFn
from transforms.settings import ElasticsearchSettings
from transforms.urls import source_domain
from transforms.walls import ACCESS_DENIED, BOT_WALL, CONSENT_WALL, PAYWALL

log = logging.getLogger(__name__)

WALL_REASONS = frozenset({BOT_WALL, ACCESS_DENIED, CONSENT_WALL, PAYWALL})
SHORT_BODY_WORDS = 150  # a body shorter than this is counted as short
WINDOW_PAGES = 10  # the last pages, tested against the baseline
BASELINE_PAGES = 50  # the baseline: a moving average over the pages before the window
MIN_BASELINE = 20  # pages in the baseline before a source can be flagged
PERSIST_PAGES = 3  # pages in a row a change must show before it is flagged
SHARE_ALPHA = 1e-4  # the binomial test's level
SIGNALS = ("authors", "dates", "words", "bodies", "walls")
WRITE_WITHIN = 2.0  # seconds a written source-day document waits for others (one bulk)


def article_event(article: Article) -> tuple[str, tuple[str, dict[str, Any]]]:
    """Return (source, what its source learns from one extracted article): small, as it
    goes through a shuffle."""
    return article.source, (
        "article",
        {
            "author": bool(article.authors),
            "date": article.published_at is not None,
            "title": bool(article.title),
            "words": len(article.body.split()),
            "extractor": article.extractor or "unknown",
            "language": article.language or "unknown",
        },
    )


def observe_article(page: dict[str, Any]) -> dict[str, float]:
    """Return the signals one extracted article (``article_event``) gives its source."""
    return {
        "authors": float(page["author"]),
        "dates": float(page["date"]),
        "words": math.log2(max(page["words"], 1)),
        "bodies": 1.0,
        "walls": 0.0,
    }


def observe_failure(key: str) -> dict[str, float]:
    """Return the signals a failure (``<stage>:<reason>``) gives its source: a page
    without an article, or a wall, says something of the source's pages (nothing of
    authors, dates or lengths); a page not asked for because its host walls says the
    source still walls; other fetch failures (a 404, robots.txt) say nothing of them."""
    stage, _, reason = key.partition(":")
    if stage == "extract" or reason in WALL_REASONS:
        return {"bodies": 0.0, "walls": float(reason in WALL_REASONS)}
    if reason == "walled_host":
        return {"walls": 1.0}
    return {}


def binomial_tail(k: int, n: int, p: float) -> float:
    """Return P(X <= k) for X ~ Binomial(n, p)."""
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


def drift_flags(
    base: dict[str, float], spread: float, window: list[dict[str, float]], ready: bool = True
) -> dict:
    """Return {signal: what changed} for the signals of the last pages (``window``) that
    left the baseline (means of older pages; ``spread``: their log2 length's deviation);
    before the baseline is ``ready`` (``MIN_BASELINE`` pages), walls only: they need no
    baseline to be news.

    A share (authors, dates, pages with a body) is flagged when so few of the window have
    it that the baseline share would give that few less than once in 10,000 windows
    (a one-sided binomial test); lengths when the window's median is at most half the
    baseline's and beyond 4 standard errors of it (a source of briefs and long reads
    needs a larger fall); walls when half the window are walls, where they were not.
    Thresholds chosen on simulated sources drawn from the body lengths of one bench set
    (article-extraction) and checked on the other two (see ``bench/source_drift.py``)."""
    flags = {}
    shares = (("authors", "with authors"), ("dates", "with a date"), ("bodies", "with a body"))
    for signal, label in shares if ready else ():
        values = [page[signal] for page in window if signal in page]
        b = base.get(signal)
        if b is None or b < 0.3 or len(values) < WINDOW_PAGES // 2:
            continue
        k = int(sum(values))
        # a share of 100% so far is not a certainty: tested as at most 95%
        if binomial_tail(k, len(values), min(b, 0.95)) < SHARE_ALPHA:
            flags[signal] = f"pages {label} {b:.0%} -> {k / len(values):.0%}"
    lengths = [page["words"] for page in window if "words" in page]
    b = base.get("words")
    if ready and b is not None and len(lengths) >= WINDOW_PAGES // 2:
        fall = max(1.0, 4 * 1.25 * spread / math.sqrt(len(lengths)))
        median = statistics.median(lengths)
        if median <= b - fall:
            flags["words"] = f"median words ~{2**b:.0f} -> ~{2**median:.0f}"
    walls = [page["walls"] for page in window]
    if sum(walls) * 2 >= len(walls) and base.get("walls", 0.0) < 0.5:
        flags["walls"] = f"walls {base.get('walls', 0.0):.0%} -> {sum(walls) / len(walls):.0%}"
    return flags


class SourceState:
    """One source's day counts and drift state (kept as JSON in keyed state)."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        data = data or {}
        self.day: str = data.get("day", "")
        self.counts: dict[str, dict[str, int]] = data.get("counts", {})
        self.window: list[dict[str, float]] = data.get("window", [])
        self.base: dict[str, float] = data.get("base", {})
        self.samples: dict[str, int] = data.get("samples", {})
        self.spread2: float = data.get("spread2", 0.0)
        self.streaks: dict[str, int] = data.get("streaks", {})
        self.flags: dict[str, dict[str, str]] = data.get("flags", {})

    def to_json(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":"))

    def count(self, group: str, name: str, n: int = 1) -> None:
        bucket = self.counts.setdefault(group, {})
        bucket[name] = bucket.get(name, 0) + n

    def roll_to(self, day: str) -> None:
        """Start a new day's counts (the drift state and flags carry on)."""
        if day != self.day:
            self.day, self.counts = day, {}

    def _to_baseline(self, page: dict[str, float]) -> None:
        """A page leaving the window joins the baseline (held for flagged signals)."""
        for signal, value in page.items():
            if signal in self.flags:
                continue
            n = self.samples[signal] = self.samples.get(signal, 0) + 1
            old = self.base.get(signal, value)
            alpha = 1 / min(BASELINE_PAGES, n)
            self.base[signal] = old + alpha * (value - old)
            if signal == "words":  # exponentially weighted variance of log2 lengths
                self.spread2 = (1 - alpha) * (self.spread2 + alpha * (value - old) ** 2)

    def add(self, signals: dict[str, float], now: str) -> tuple[list[str], list[str]]:
        """Take one page's ``signals``; return (flags raised, flags cleared)."""
        self.window.append(signals)
        if len(self.window) > WINDOW_PAGES:
            self._to_baseline(self.window.pop(0))
        if len(self.window) < WINDOW_PAGES:
            return [], []
        ready = self.samples.get("bodies", 0) >= MIN_BASELINE
        found = drift_flags(self.base, math.sqrt(self.spread2), self.window, ready)
        for signal in SIGNALS:
            self.streaks[signal] = self.streaks.get(signal, 0) + 1 if signal in found else 0
        raised = [s for s in found if s not in self.flags and self.streaks[s] >= PERSIST_PAGES]
        cleared = [s for s in self.flags if s not in found]
        for signal in raised:
            self.flags[signal] = {"what": found[signal], "since": now}
        for signal in cleared:
            del self.flags[signal]
        return raised, cleared


def median_words(histogram: dict[str, int]) -> int | None:
    """Return the median body length from a histogram of log2 buckets (bucket k holds
    lengths in [2^k, 2^(k+1))), as the bucket's geometric middle."""
    total = sum(histogram.values())
    if not total:
        return None
    running = 0
    for bucket in sorted(histogram, key=int):
        running += histogram[bucket]
        if running * 2 >= total:
            return round(2 ** (int(bucket) + 0.5))
    return None


def source_day_id(source: str, day: str, run: str) -> str:
    """Return the ``_id`` of a source's day document in one run."""
    return hashlib.sha256(f"source_day|{source}|{day}|{run}".encode()).hexdigest()[:32]


def source_day_action(source: str, state: SourceState, run: str, index: str) -> dict[str, Any]:
    """Return the bulk ``index`` action of ``source``'s document for ``state.day``."""
    n = state.counts.get("n", {})
    document = {
        "@timestamp": f"{state.day}T00:00:00+00:00",
        "stage": "source_day",
        "source": source,
        "run": run,
        "updated_at": datetime.now(timezone.utc).isoformat(),
        **{field: n.get(field, 0) for field in SOURCE_DAY_COUNTS},
        "median_words": median_words(state.counts.get("words", {})),
        "reasons": state.counts.get("reasons", {}),
        "extractors": sorted(state.counts.get("extractors", {})),
        "languages": sorted(state.counts.get("languages", {})),
        "flags": sorted(state.flags),
        "flag_details": [
            f"{signal}: {flag['what']} since {flag['since']}"
            for signal, flag in sorted(state.flags.items())
        ],
    }
    return {
        "_op_type": "index",
        "_index": index,
        "_id": source_day_id(source, state.day, run),
        "_source": document,
    }


SOURCE_DAY_COUNTS = (
    "documents",
    "no_author",
    "no_date",
    "no_title",
    "short_body",
    "walls",
    "failures",
)


def _day(now: float) -> str:
    return datetime.fromtimestamp(now, tz=timezone.utc).strftime("%Y-%m-%d")


def _stamp(now: float) -> str:
    return datetime.fromtimestamp(now, tz=timezone.utc).isoformat(timespec="seconds")


def tally(state: SourceState, event: tuple[str, Any], now: float) -> tuple[list[str], bool]:
    """Count one event (("article", summary) or ("failure", "<stage>:<reason>")) into ``state``;
    return (flags raised, whether the document should be written at once)."""
    kind, value = event
    state.roll_to(_day(now))
    first_wall = False
    if kind == "article":
        words = value["words"]
        state.count("n", "documents")
        state.count("n", "no_author", int(not value["author"]))
        state.count("n", "no_date", int(not value["date"]))
        state.count("n", "no_title", int(not value["title"]))
        state.count("n", "short_body", int(words < SHORT_BODY_WORDS))
        state.count("words", str(int(math.log2(max(words, 1)))))
        state.count("extractors", value["extractor"])
        state.count("languages", value["language"])
        signals = observe_article(value)
    else:
        key: str = value  # <stage>:<reason>
        state.count("n", "failures")
        state.count("reasons", key)
        if key.partition(":")[2] in WALL_REASONS:
            first_wall = not state.counts["n"].get("walls")
            state.count("n", "walls")
        signals = observe_failure(key)
        if not signals:
            return [], False
    raised, cleared = state.add(signals, _stamp(now))
    return raised, bool(raised or cleared or first_wall)


class TrackSourceHealthDoFn(beam.DoFn):
    """(source, event) -> bulk actions of the source's day document (see module doc)."""

    STATE = ReadModifyWriteStateSpec("source", StrUtf8Coder())
    PENDING = ReadModifyWriteStateSpec("pending", BooleanCoder())
    FLUSH = TimerSpec("flush", TimeDomain.REAL_TIME)
    END = TimerSpec("end", TimeDomain.WATERMARK)

    def __init__(
        self, index: str, run: str, every: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.index, self.run, self.every, self.clock = index, run, every, clock
        self.flagged = Metrics.counter("wirestream", "source_drift_flags")

    def process(
        self,
        element,
        stored=beam.DoFn.StateParam(STATE),
        pending=beam.DoFn.StateParam(PENDING),
        flush=beam.DoFn.TimerParam(FLUSH),
        end=beam.DoFn.TimerParam(END),
    ):
        source, event = element
        raw = stored.read()
        state = SourceState(json.loads(raw) if raw else None)
        now = self.clock()
        if state.day and state.day != _day(now) and state.counts:  # the day ends: write it
            yield source_day_action(source, state, self.run, self.index)
        raised, at_once = tally(state, event, now)
        for signal in raised:
            self.flagged.inc()
            log.warning("source %s drifted: %s", source, state.flags[signal]["what"])
        stored.write(state.to_json())
        if at_once:
            yield source_day_action(source, state, self.run, self.index)
        if not pending.read():  # (reset on every page, a busy source's timer never fired)
            pending.write(True)
            flush.set(Timestamp(seconds=now + self.every))
            end.set(GlobalWindow().max_timestamp())

    @on_timer(FLUSH)
    def on_flush(
        self,
        key=beam.DoFn.KeyParam,
        stored=beam.DoFn.StateParam(STATE),
        pending=beam.DoFn.StateParam(PENDING),
    ):
        pending.clear()
        yield from self._write(key, stored)

    @on_timer(END)
    def on_end(
        self,
        key=beam.DoFn.KeyParam,
        stored=beam.DoFn.StateParam(STATE),
        flush=beam.DoFn.TimerParam(FLUSH),
    ):
        flush.clear()  # a pending wall-clock timer would hold the end of a bounded run
        yield from self._write(key, stored)

    def _write(self, source: str, stored):
        raw = stored.read()
        if raw:
            yield source_day_action(source, SourceState(json.loads(raw)), self.run, self.index)


def failure_event(failure: Failure) -> tuple[str, tuple[str, str]]:
    return source_domain(failure.url), ("failure", failure.key)


class TrackSourceHealth(beam.PTransform):
    """(articles, failures) -> dead letters of the source-day writes."""

    def __init__(self, es: ElasticsearchSettings, index: str, run: str, every: float) -> None:
        super().__init__()
        self.es, self.index, self.run, self.every = es, index, run, every

    def expand(self, inputs):
        articles, failures = inputs
        pages = (
            failures
            | "PageFailures" >> beam.Filter(lambda f: f.stage in ("fetch", "extract"))
            | "FailureEvents" >> beam.Map(failure_event)
        )
        events = articles | "ArticleEvents" >> beam.Map(article_event)
        return (
            (events, pages)
            | "AllPages" >> beam.Flatten()
            | "InGlobalWindow" >> beam.WindowInto(window.GlobalWindows())
            | "Track" >> beam.ParDo(TrackSourceHealthDoFn(self.index, self.run, self.every))
            | "OneWriterKey" >> beam.Map(lambda action: (0, action))
            | "Batch" >> beam.GroupIntoBatches(200, max_buffering_duration_secs=WRITE_WITHIN)
            | "Bulk"
            >> beam.ParDo(BulkIndexDoFn(self.es, "wirestream.stats", "source_health")).with_outputs(
                "dead_letter", main="indexed"
            )
        ).dead_letter
