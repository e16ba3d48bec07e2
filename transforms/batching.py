"""A DoFn that handles its input in batches within a bundle.

Elements are buffered with their own timestamp and window and handed to
``handle_batch`` when ``max_batch`` are held, when the first has waited
``max_wait`` seconds (if set), and when the bundle ends; outputs keep each element's
timestamp and window, so batching never moves an element in time. No state, timers
or shuffle: it runs inside the fused stage (a keyed ``GroupIntoBatches`` would be a
stage boundary, a barrier in batch mode). Beam's ``BatchElements`` has no time bound
within a bundle and no way back from a batch to each element's window, which the
sink's dead letters and the resume lookups need.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import apache_beam as beam
from apache_beam.utils.windowed_value import WindowedValue


class BatchingDoFn(beam.DoFn):
    """Subclasses set ``max_batch`` (and ``max_wait``) and implement ``handle_batch``."""

    max_batch: int = 100
    max_wait: float | None = None

    def start_bundle(self) -> None:
        self._buffer: list[WindowedValue] = []
        self._since = 0.0

    def process(self, element, timestamp=beam.DoFn.TimestampParam, window=beam.DoFn.WindowParam):
        if not self._buffer:
            self._since = time.monotonic()
        self._buffer.append(WindowedValue(element, timestamp, (window,)))
        waited = self.max_wait is not None and time.monotonic() - self._since >= self.max_wait
        if len(self._buffer) >= self.max_batch or waited:
            yield from self._flush()

    def finish_bundle(self):
        yield from self._flush()

    def _flush(self) -> Iterator:
        batch, self._buffer = self._buffer, []
        if batch:
            yield from self.handle_batch(batch)

    def handle_batch(self, batch: list[WindowedValue]) -> Iterator:
        """Yield outputs for ``batch``: ``held.with_value(output)`` for the main output,
        ``TaggedOutput(tag, held.with_value(output))`` for another. (Not named
        ``process_batch``: Beam reserves that name for batched DoFns.)"""
        raise NotImplementedError
