"""Per-host politeness: a pause between requests to a host and a cap on requests in flight.

The pause counts from the previous request's *end* when a host has nothing in flight
(as Nutch's fetcher and Heritrix do): a request's arrival at the server comes before
its end, so arrivals are then ``min_delay`` apart however late a busy client sends
(spacing starts instead, a poll sent 90 ms late under start-up load arrived 0.41 s
before the next page with a 0.5 s delay). Requests that overlap, when a host allows
more than one at a time, still start ``min_delay`` apart.

Two layers. Across all workers, :class:`LanePacer` keeps the last request end of
each host in keyed state, keyed by the host's *lane* (:func:`pacing_lane`, a fixed
hash of the host): Beam processes one key's elements one at a time wherever the key
lives, so a host's requests go ``min_delay`` apart however many workers there are.
A lane forgets a host once its last end is ``min_delay`` old, so the state is bounded
by the lanes (1,024) and the hosts each asked within the delay, without a timer (a
timer per host kept bounded Flink jobs from ending). Feed polls are keyed by the same
lanes, so a host's polls and pages run on the same worker, where the gate spaces them.
(Reserving future start times instead, and fetching after a shuffle, was tried: a
worker busy with the previous article started its request late, and the next one,
on time elsewhere, came 0.24 s after it with a 1 s delay.) Within a worker process,
:class:`HostGate` caps the requests in flight to a host and applies a longer robots.txt
``Crawl-delay`` (that one per process: it is learnt where robots.txt was read) and
leaves a host that answers with bot walls alone for a while (the lanes put a host's
requests on one worker, so that worker's gate sees its walls).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from apache_beam.metrics import Metrics

from transforms.urls import host_port

_GATES: dict[tuple[float, int], HostGate] = {}
_GATES_LOCK = threading.Lock()


#: Keys of the pacing steps: few enough to bound their state, many enough to spread
#: hosts over workers (Flink's default 128 key groups each get 8).
PACING_LANES = 1024


def host_key(url: str) -> str:
    """Return the politeness key of ``url``: its lowercased host plus any explicit port."""
    return host_port(url)


def pacing_lane(host: str) -> int:
    """Return the keyed lane of ``host`` (a politeness key): the same on every worker."""
    digest = hashlib.blake2b(host.encode("utf-8"), digest_size=8).digest()  # crc32 clumps
    return int.from_bytes(digest, "big") % PACING_LANES


def recent_hosts(starts: dict[str, float], now: float, delay: float) -> dict[str, float]:
    """Return the hosts of ``starts`` (last request times) that can still delay a request."""
    return {host: at for host, at in starts.items() if at > now - delay}


class LanePacer:
    """The pause between requests to a host, kept in its lane's keyed state.

    The keyed step that fetches (``transforms.fetch.PacedFetchPageDoFn``) takes a
    :meth:`turn` around each request: it waits until ``min_delay`` has passed since the
    previous request to the host ended, on whichever worker that was, and notes this
    one's end. Beam processes one key's elements one at a time wherever the key lives,
    so a host's requests go at least ``min_delay`` apart across all workers. (As a step
    of its own before the fetch, pacing relied on the runner fusing the two: Prism runs
    them as two stages, and the time it noted was no request's end.)
    """

    def __init__(self, min_delay: float) -> None:
        self.min_delay = min_delay
        self.waited = Metrics.distribution("wirestream", "host_wait_ms")
        self.kept = Metrics.distribution("wirestream", "pacing_hosts_kept")

    @contextmanager
    def turn(self, last_ends, url: str) -> Iterator[None]:
        """Wait for ``url``'s host's turn; note when the request made within ends."""
        host = host_key(url)
        ends = json.loads(last_ends.read() or "{}")
        slept = wait_until(ends.get(host, 0.0) + self.min_delay)
        self.waited.update(int(slept * 1000))
        try:
            yield
        finally:
            now = time.time()
            ends = recent_hosts(ends, now, self.min_delay)
            ends[host] = now
            last_ends.write(json.dumps(ends))
            self.kept.update(len(ends))


def wait_until(start: float) -> float:
    """Sleep until the wall-clock time ``start``; return the seconds slept."""
    delay = start - time.time()
    if delay > 0:
        time.sleep(delay)
    return max(delay, 0.0)


class HostGate:
    """Space requests to one host by ``min_delay`` seconds (from the last end when none is
    in flight, else between starts), at most ``max_concurrent`` at a time."""

    def __init__(self, min_delay: float, max_concurrent: int) -> None:
        self.min_delay = min_delay
        self.max_concurrent = max_concurrent
        self._cond = threading.Condition()
        self._next_start: dict[str, float] = {}
        self._in_flight: dict[str, int] = {}
        self._delays: dict[str, float] = {}
        # hosts that answered with walls: (walls in a row, back-off end); one per walled
        # host, dropped at its next normal answer
        self._walls: dict[str, tuple[int, float]] = {}

    def set_delay(self, host: str, seconds: float) -> None:
        """Use ``seconds`` for ``host`` when longer than the default (robots ``Crawl-delay``)."""
        with self._cond:
            self._delays[host] = max(seconds, self.min_delay)

    def delay_for(self, host: str) -> float:
        """Return the delay that applies to ``host``."""
        return self._delays.get(host, self.min_delay)

    def is_free(self, url: str) -> bool:
        """Return whether a request to ``url``'s host could start now without waiting."""
        host = host_key(url)
        with self._cond:
            return (
                self._in_flight.get(host, 0) < self.max_concurrent
                and self._next_start.get(host, 0.0) <= time.monotonic()
                and not self._backed_off(host)
            )

    def note_wall(self, url: str, base: float, cap: float) -> float:
        """Leave ``url``'s host alone for ``base`` seconds, doubled for each wall in a row
        (at most ``cap``); return the back-off."""
        host = host_key(url)
        with self._cond:
            walls = self._walls.get(host, (0, 0.0))[0] + 1
            seconds = min(base * 2 ** (walls - 1), cap)
            self._walls[host] = (walls, time.monotonic() + seconds)
            return seconds

    def note_answer(self, url: str) -> None:
        """A normal answer from ``url``'s host ends its back-off."""
        with self._cond:
            self._walls.pop(host_key(url), None)

    def backed_off(self, url: str) -> float:
        """Return the seconds ``url``'s host is still left alone for (0 when it is not)."""
        with self._cond:
            return self._backed_off(host_key(url))

    def _backed_off(self, host: str) -> float:
        walls = self._walls.get(host)
        return max(walls[1] - time.monotonic(), 0.0) if walls else 0.0

    @contextmanager
    def slot(self, url: str) -> Iterator[None]:
        """Hold a request slot for ``url``'s host (waiting for one first)."""
        host = host_key(url)
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
            yield
        finally:
            with self._cond:
                self._in_flight[host] -= 1
                if not self._in_flight[host]:  # the pause counts from the last end
                    end = time.monotonic() + self.delay_for(host)
                    self._next_start[host] = max(self._next_start[host], end)
                self._cond.notify_all()


def gate_for(min_delay: float, max_concurrent: int) -> HostGate:
    """Return this process's gate for these limits (created on first use)."""
    key = (min_delay, max_concurrent)
    with _GATES_LOCK:
        if key not in _GATES:
            _GATES[key] = HostGate(min_delay, max_concurrent)
        return _GATES[key]
