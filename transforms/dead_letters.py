"""Dead letters: what a stage could not handle, as data, in one place.

Every stage sends a ``Failure`` to its ``dead_letter`` output through ``dead_letter()``,
which logs it (summarised) and counts it once, under ``wirestream.failed`` /
``<stage>:<reason>``. The pipeline merges those outputs into ``WriteDeadLetters``, which
writes replayable JSON-lines files from whichever worker met the failure;
``read_dead_letters`` reads them back (``wirestream replay``, start-up replay).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.utils.windowed_value import WindowedValue

from transforms.batching import BatchingDoFn

log = logging.getLogger(__name__)

DEAD_LETTER = "dead_letter"  # the output tag every stage sends failures to
FAILED = "wirestream.failed"  # counter namespace: one counter per <stage>:<reason>
# What a stage could not do for an element it passed on anyway (no entities, no places).
DEGRADED = "wirestream.degraded"


@dataclass
class Failure:
    """A dead-letter record: what failed, where, why, and what to replay."""

    stage: str
    reason: str
    url: str
    detail: str = ""
    payload: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        """``<stage>:<reason>``, the name it is counted under."""
        return f"{self.stage}:{self.reason}"


class FailureLog:
    """Logs failures so that the console stays readable at any failure rate: the first
    ``first`` of each (stage, reason) in full, then one line per (stage, reason) every
    ``every`` seconds with how many more there were and a few of their URLs. The
    counters (``failed`` / ``<stage>:<reason>``) and the dead-letter files keep every one.
    Per process; nothing in ``logging`` summarises repeats, hence this small class."""

    def __init__(self, first: int = 3, every: float = 30.0, examples: int = 3) -> None:
        self.first, self.every, self.examples = first, every, examples
        self.lock = threading.Lock()
        self.seen: dict[tuple[str, str], int] = {}
        self.held: dict[tuple[str, str], list[str]] = {}
        self.since: dict[tuple[str, str], float] = {}

    def log(self, failure: Failure, level: int) -> None:
        key = (failure.stage, failure.reason)
        now = time.monotonic()
        with self.lock:
            seen = self.seen[key] = self.seen.get(key, 0) + 1
            if seen <= self.first:
                summary = None
            else:
                held = self.held.setdefault(key, [])
                held.append(failure.url)
                started = self.since.setdefault(key, now)
                if now - started < self.every:
                    return
                summary, self.held[key], self.since[key] = held, [], now
        if summary is None:
            detail = failure.detail
            if failure.url not in detail:
                detail = f"{failure.url}: {detail}"
            suffix = " (more of these are summarised)" if seen == self.first else ""
            log.log(level, "%s failed (%s): %s%s", failure.stage, failure.reason, detail, suffix)
            return
        shown = ", ".join(url[:120] for url in summary[: self.examples])
        log.log(
            level,
            "%s failed (%s) %d more times (%d in all so far here), e.g. %s",
            failure.stage,
            failure.reason,
            len(summary),
            seen,
            shown,
        )


FAILURE_LOG = FailureLog()


def dead_letter(failure: Failure, level: int = logging.WARNING) -> beam.pvalue.TaggedOutput:
    """Log (summarised, see ``FailureLog``) and count ``failure`` (once, under
    ``wirestream.failed`` / ``<stage>:<reason>``) and return it for the ``dead_letter``
    output, where every stage sends what it could not handle."""
    Metrics.counter(FAILED, failure.key).inc()
    FAILURE_LOG.log(failure, level)
    return beam.pvalue.TaggedOutput(DEAD_LETTER, failure)


def dead_letter_line(failure: Failure) -> str:
    """Return ``failure`` as one JSON line of a dead-letter file."""
    record = {"time": datetime.now(timezone.utc).isoformat(), **dataclasses.asdict(failure)}
    return json.dumps(record, ensure_ascii=False, default=str) + "\n"


def write_dead_letter_file(directory: str, stage: str, lines: list[str]) -> str:
    """Write ``lines`` as a new file ``<dir>/<stage>-<YYYYMMDD-HHMMSS>-<id>.jsonl`` on any
    Beam filesystem (local, s3://, gs://...) and return its path.

    A new, uniquely named file per batch, not an append: object stores cannot append,
    and workers on other machines must not share a file."""
    from apache_beam.io.filesystems import FileSystems

    name = f"{stage}-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:12]}.jsonl"
    path = FileSystems.join(directory, name)
    if "://" not in directory:
        os.makedirs(directory, exist_ok=True)
    with FileSystems.create(path) as handle:
        handle.write("".join(lines).encode("utf-8"))
    return path


def dead_letter_paths(arguments: list[str]) -> list[str]:
    """Expand files, folders and globs (any Beam filesystem) to dead-letter files."""
    from apache_beam.io.filesystems import FileSystems

    paths = []
    for argument in arguments:
        pattern = argument
        if "://" not in argument and os.path.isdir(argument):
            pattern = os.path.join(argument, "*.jsonl")
        for match in FileSystems.match([pattern])[0].metadata_list:
            paths.append(match.path)
    return sorted(paths)


def read_dead_letter_file(path: str) -> list[dict[str, Any]]:
    """Return the records of one dead-letter file (any Beam filesystem)."""
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path, compression_type="uncompressed") as handle:
        text = handle.read().decode("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def read_dead_letters(arguments: list[str]) -> list[dict[str, Any]]:
    """Return the dead-letter records of ``arguments`` (files, folders or globs)."""
    paths = dead_letter_paths(arguments)
    return [record for path in paths for record in read_dead_letter_file(path)]


class WriteDeadLetterFilesDoFn(BatchingDoFn):
    """Failure -> a JSON-lines file per stage and batch under ``directory``; counted."""

    max_batch = 500
    max_wait = 5.0

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.total = Metrics.counter("wirestream", "dead_letters")

    def handle_batch(self, batch: list[WindowedValue]) -> Iterator:
        by_stage: dict[str, list[str]] = {}
        for held in batch:
            failure = held.value
            by_stage.setdefault(failure.stage, []).append(dead_letter_line(failure))
        for stage, lines in by_stage.items():
            path = write_dead_letter_file(self.directory, stage, lines)
            log.info("%d dead letter(s) of stage %s written to %s", len(lines), stage, path)
            self.total.inc(len(lines))
        return iter(())


class WriteDeadLetters(beam.PTransform):
    """Failure -> JSON-lines files under ``directory`` (a local folder every worker
    shares, or any Beam filesystem path such as ``s3://bucket/dead-letter``) that
    ``wirestream replay`` re-indexes."""

    def __init__(self, directory: str) -> None:
        super().__init__()
        self.directory = directory

    def expand(self, failures):
        return failures | "Write" >> beam.ParDo(WriteDeadLetterFilesDoFn(self.directory))
