"""Signals between the process that runs a job and the stages running in it."""

from __future__ import annotations

import logging
import threading
import time
import uuid

from apache_beam.io.filesystems import FileSystems

log = logging.getLogger(__name__)

# Set in the pipeline's process when a stop was requested (the launcher sets it on the
# first Ctrl-C); feed pollers check it and stop polling so the job can drain.
DRAINING = threading.Event()


def stop_marker_path(folder: str) -> str:
    """Return a new run's stop marker under ``folder`` (one every worker can read)."""
    return FileSystems.join(folder, f".stop-{uuid.uuid4().hex}")


def request_stop(marker: str) -> None:
    """Write ``marker``: every worker's pollers stop at their next check (never raises:
    without it, workers elsewhere poll until the flush window ends)."""
    try:
        FileSystems.create(marker).close()
    except Exception as exc:
        log.warning("cannot write the stop marker %s (%s): polls stop at the cancel", marker, exc)


def clear_stop(marker: str) -> None:
    """Remove ``marker`` once its run has ended (if it was written)."""
    if FileSystems.exists(marker):
        FileSystems.delete([marker])


class StopRequest:
    """Whether a stop was requested: :data:`DRAINING` in this process, or the run's stop
    marker, which the launcher writes where every worker reads it (Beam filesystems: a
    local folder, ``s3://``, ``gs://``). A job's DoFns on a cluster run in other
    processes than the launcher, so only the marker reaches them. The marker is looked
    for at most once per ``every`` seconds."""

    def __init__(self, marker: str | None, every: float = 1.0) -> None:
        self.marker, self.every = marker, every
        self._checked, self._set = float("-inf"), False  # monotonic time may be < every

    def is_set(self) -> bool:
        if DRAINING.is_set() or self._set:
            return True
        now = time.monotonic()
        if self.marker and now - self._checked >= self.every:
            self._checked = now
            self._set = FileSystems.exists(self.marker)
        return self._set
