"""Per-host politeness: a minimum delay between request starts and a cap on requests in flight.

The gate is per worker process (one per distinct pair of limits), shared by every
``DoFn`` instance and thread in it. That is exact on a single-process runner (Prism,
Direct) and on one worker of a distributed runner; across N workers a host may see N
times the rate. Keyed state would make the limit global but would serialise each
host's fetches through one key and block bundles with sleeps, so we chose the
process-wide gate and say so here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

_GATES: dict[tuple[float, int], HostGate] = {}
_GATES_LOCK = threading.Lock()


def host_key(url: str) -> str:
    """Return the politeness key of ``url``: its lowercased host plus any explicit port."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return host if parts.port is None else f"{host}:{parts.port}"


class HostGate:
    """Space request starts to one host by ``min_delay`` seconds, at most ``max_concurrent``."""

    def __init__(self, min_delay: float, max_concurrent: int) -> None:
        self.min_delay = min_delay
        self.max_concurrent = max_concurrent
        self._cond = threading.Condition()
        self._next_start: dict[str, float] = {}
        self._in_flight: dict[str, int] = {}
        self._delays: dict[str, float] = {}

    def set_delay(self, host: str, seconds: float) -> None:
        """Use ``seconds`` for ``host`` when longer than the default (robots ``Crawl-delay``)."""
        with self._cond:
            self._delays[host] = max(seconds, self.min_delay)

    def delay_for(self, host: str) -> float:
        """Return the delay that applies to ``host``."""
        return self._delays.get(host, self.min_delay)

    @contextmanager
    def slot(self, url: str) -> Iterator[float]:
        """Hold a request slot for ``url``'s host; yields the seconds spent waiting."""
        host = host_key(url)
        started = time.monotonic()
        with self._cond:
            while True:
                now = time.monotonic()
                wait = self._next_start.get(host, 0.0) - now
                if self._in_flight.get(host, 0) < self.max_concurrent and wait <= 0:
                    break
                self._cond.wait(timeout=wait if wait > 0 else None)
            self._in_flight[host] = self._in_flight.get(host, 0) + 1
            self._next_start[host] = now + self.delay_for(host)
        try:
            yield time.monotonic() - started
        finally:
            with self._cond:
                self._in_flight[host] -= 1
                self._cond.notify_all()


def gate_for(min_delay: float, max_concurrent: int) -> HostGate:
    """Return this process's gate for these limits (created on first use)."""
    key = (min_delay, max_concurrent)
    with _GATES_LOCK:
        if key not in _GATES:
            _GATES[key] = HostGate(min_delay, max_concurrent)
        return _GATES[key]
