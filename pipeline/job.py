"""A wirestream job, a stream or a backfill, run as named phases:

1. **prepare**: the index templates installed and what an outage sent to dead letters
   offered again (:func:`prepare_index`); an unreachable node ends the command here;
2. **run**: the pipeline built and run in a supervised child process
   (``launcher.run_supervised``: the first Ctrl-C drains, a second aborts), with the
   job's progress display;
3. **end**, in that child once the job has ended (:class:`JobEnd`): its counters read
   once, the sink reconciled once, the mode's report printed;
4. **summary**: what the index now holds (``progress.print_summary``);
5. **after**: passes over the index the job fed (a backfill's story clustering).

``cli.py`` parses and dispatches to :func:`run_job`; ``stream.py`` and ``backfill.py``
assemble the pipelines; ``launcher.py`` supervises a run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import apache_beam as beam
from apache_beam.runners.runner import PipelineResult

from pipeline.config import Settings
from pipeline.progress import (
    BackfillProgress,
    IndexedSince,
    by_name,
    format_summary,
    print_counters,
    print_summary,
    summarize_counters,
)
from transforms.index.reconcile import TO_INDEX, check, format_sink, sink_of

log = logging.getLogger(__name__)

Counters = dict[tuple[str, str], int]  # by (namespace, name)


class JobEnd:
    """How a job's end is reported, in the child that ran it: the counters are read once
    (``progress.read_counters``) and the sink is reconciled once. A stream's end: the
    counters and the sink's line; a reconciliation gap fails the run."""

    hint = "see the log for the failing stage"

    def building(self) -> None:
        """The pipeline is being built (a batch runner returns when it is done)."""

    def started(self, result: PipelineResult) -> None:
        """The job runs (``result`` is its handle)."""

    def ended(self, counters: Counters) -> None:
        """The job ended by itself: report and reconcile."""
        totals = by_name(counters)
        print_counters(totals)
        if TO_INDEX in totals:
            sink = sink_of(totals)
            print(format_sink(sink), flush=True)
            check(sink, self.hint)

    def stopped(self, counters: Counters) -> None:
        """A stop request drained the job, which is cancelled next: what it had in
        flight is written, the rest was never started."""
        print_counters(by_name(counters))

    def failed(self) -> None:
        """The job failed or was aborted."""


class BackfillEnd(JobEnd):
    """A backfill's progress bar while it runs, and its summary (optionally as JSON) at
    the end."""

    hint = "re-run the backfill (it resumes)"

    def __init__(
        self,
        settings: Settings,
        inputs: Callable[[], Iterable[int]],
        counted_at_end: bool,
        progress: bool = True,
        summary_path: str | None = None,
    ) -> None:
        self.settings, self.inputs = settings, inputs
        self.counted_at_end, self.progress = counted_at_end, progress
        self.summary_path = summary_path
        self.began = time.monotonic()
        self.bar: BackfillProgress | None = None

    def building(self) -> None:
        self.began = time.monotonic()

    def started(self, result: PipelineResult) -> None:
        if self.counted_at_end:  # no counters until the end: count the index instead
            indexed = IndexedSince(self.settings) if self.progress else lambda: 0
            self.bar = BackfillProgress(self.inputs, indexed, self.progress, "backfill, indexed")
        else:
            self.bar = BackfillProgress.of_job(self.inputs, result, self.progress)

    def ended(self, counters: Counters) -> None:
        seconds = time.monotonic() - self.began
        summary = summarize_counters(counters)
        self._close_bar(summary["done"])
        print(format_summary(summary, seconds), flush=True)
        if self.summary_path:
            Path(self.summary_path).write_text(json.dumps({**summary, "seconds": seconds}))
        print_counters(by_name(counters))
        check(summary["sink"], self.hint)

    def stopped(self, counters: Counters) -> None:
        self._close_bar()
        super().stopped(counters)

    def failed(self) -> None:
        self._close_bar()

    def _close_bar(self, done: int | None = None) -> None:
        if self.bar is not None:
            self.bar.close(done)
            self.bar = None


@dataclass
class Job:
    """What :func:`run_job` runs: the settings, how to build the pipeline, how its end is
    reported, and what runs around it."""

    name: str  # stream or backfill
    settings: Settings
    build: Callable[[beam.Pipeline], None]
    end: JobEnd
    grace: float  # seconds a drain may take to write what is in flight
    # entered around the run phase; yields what to call about once a second (progress)
    around: Callable[[], contextlib.AbstractContextManager[Callable[[], None] | None]] = lambda: (
        contextlib.nullcontext(None)
    )
    on_drain: Callable[[], None] | None = None  # in the child, at the first stop request
    after: Sequence[Callable[[], int]] = field(default_factory=tuple)  # exit code each


def run_job(job: Job, beam_args: list[str]) -> int:
    """Run ``job`` on the runner ``beam_args`` name, phase by phase; return an exit code."""
    from pipeline.launcher import job_starter, run_supervised

    log.debug("%s: prepare", job.name)
    prepare_index(job.settings)

    def build(pipeline: beam.Pipeline) -> None:
        job.end.building()
        job.build(pipeline)

    log.debug("%s: run", job.name)
    with job.around() as tick:
        code = run_supervised(job_starter(build, beam_args), job.grace, tick, job.on_drain, job.end)
    if code != 0:
        return code
    log.debug("%s: summary", job.name)
    print_summary(job.settings)
    for after in job.after:
        code = after() or code
    return code


def prepare_index(settings: Settings) -> None:
    """Install the index templates, failing early with a clear message if the node is
    unreachable, then re-offer what an earlier outage sent to dead letters
    (``transforms.index.replay``)."""
    from transforms.index.client import CONNECTION_ERRORS, make_client
    from transforms.index.replay import replay_transient
    from transforms.index.templates import (
        TemplateConflict,
        install_index_template,
        install_stats_template,
        install_stories_template,
    )

    client = make_client(settings.elasticsearch, retries=1)
    try:
        install_index_template(client, settings.elasticsearch)
        if settings.stats.enabled:
            install_stats_template(client, settings.elasticsearch, settings.stats)
        if settings.stories.enabled:
            install_stories_template(client, settings.elasticsearch)
        quick = settings.elasticsearch.model_copy(update={"retry_seconds": 30})
        replayed = replay_transient(client, settings.dead_letter_dir, quick)
        if replayed.files:
            print(replayed.line(), flush=True)
    except CONNECTION_ERRORS as exc:
        es = settings.elasticsearch
        engine, command = (
            ("OpenSearch", "opensearch") if es.engine == "opensearch" else ("Elasticsearch", "es")
        )
        raise SystemExit(
            f"error: cannot reach {engine} at {es.url} ({getattr(exc, 'message', exc)}); "
            f"start the local node with `wirestream {command} start` or pass --es-url"
        ) from None
    except TemplateConflict as exc:
        raise SystemExit(f"error: {exc}") from None
    finally:
        client.close()
