"""Feed hygiene: failing feeds are backed off, and each feed's interval follows how often
it really publishes.

Modelled on Media Cloud's rss-fetcher (~180,000 feeds for years): a failure adds its
weight to the feed's score (hard 1: the feed is gone or was never one; soft 0.5: refused
or walled; temporary 0.25: timeouts, 5xx, a backed-off host), the next poll waits the
feed's interval times 2^score (capped), and one successful poll resets it. A feed that
answers is polled at an interval between its configured one (the fastest it is ever
polled) and ``max_interval`` (the configured one unless the profile allows more: a slower
poll costs freshness, so it is the user's to allow), near the time it takes to publish one new
item, and never faster than the feed's own ``<ttl>`` or ``sy:updatePeriod`` asks. The
state is a few numbers in the feed's entry of the poll step's keyed state.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

HARD = frozenset({"http_404", "http_410", "dns", "bad_url", "private_address", "not_a_feed"})
TEMPORARY = frozenset(
    {
        "timeout",
        "connection",
        "deadline",
        "read_error",
        "http_429",
        "walled_host",
        "too_many_redirects",
    }
)
RATE_MEMORY = 0.9  # how much of its publishing rate a feed's previous polls keep
# sy:updatePeriod in seconds (RSS 1.0 syndication module)
UPDATE_PERIODS = {
    "hourly": 3600,
    "daily": 86_400,
    "weekly": 604_800,
    "monthly": 2_592_000,
    "yearly": 31_536_000,
}


def failure_weight(reason: str) -> float:
    """Return how much a failure of ``reason`` counts toward its feed's back-off."""
    if reason in HARD:
        return 1.0
    if reason in TEMPORARY or reason.startswith("http_5"):
        return 0.25
    return 0.5


def note_failure(
    entry: dict[str, Any], reason: str, now: float, interval: float, cap: float
) -> float:
    """Record a failed poll in ``entry``; return the seconds until the next poll."""
    failing = entry.setdefault("failing", {"score": 0.0, "since": now, "count": 0})
    failing["score"] += failure_weight(reason)
    failing["count"] += 1
    failing["last"] = reason
    return min(interval * 2 ** failing["score"], cap)


def note_success(entry: dict[str, Any]) -> dict[str, Any] | None:
    """Record a successful poll; return the failing record it ends, if any."""
    return entry.pop("failing", None)


def publish_hint(feed_info: dict[str, Any]) -> float | None:
    """Return the shortest interval (seconds) the feed itself asks for: ``<ttl>`` minutes
    or ``sy:updatePeriod`` / ``sy:updateFrequency``; None when it says nothing usable."""
    hints = []
    ttl = str(feed_info.get("ttl") or "").strip()
    if ttl.isdigit() and int(ttl) > 0:
        hints.append(int(ttl) * 60.0)
    period = UPDATE_PERIODS.get(str(feed_info.get("sy_updateperiod") or "").strip().lower())
    if period:
        frequency = str(feed_info.get("sy_updatefrequency") or "1").strip()
        hints.append(period / max(int(frequency) if frequency.isdigit() else 1, 1))
    return max(hints) if hints else None


def newest_of(published: Iterable[datetime | None]) -> float | None:
    """Return the newest item time (epoch seconds) of a poll, None without dates."""
    times = [p.timestamp() for p in published if p is not None]
    return max(times) if times else None


def adapt_interval(
    entry: dict[str, Any],
    published: list[datetime | None] | None,
    now: float,
    interval: float,
    max_interval: float | None,
    hint: float | None,
) -> float:
    """Update the feed's publishing rate from one successful poll (``published``: its
    items' dates; None for a 304, nothing new) and return its next interval. A feed
    whose items carry no dates keeps its interval (its rate cannot be told)."""
    published = published if published is not None else []
    newest_seen = entry.get("newest")
    newest = newest_of(published)
    if published and newest is None:
        return entry.get("interval", interval)
    new = sum(1 for p in published if p is not None and p.timestamp() > (newest_seen or math.inf))
    if newest is not None:
        entry["newest"] = max(newest, newest_seen or newest)
    last_poll, entry["last_ok"] = entry.get("last_ok"), now
    if last_poll is None or newest_seen is None or now <= last_poll:
        return entry.get("interval", interval)  # a first poll: nothing to compare with
    # new items per second over the recent polls, older polls fading (a ratio of sums:
    # an average of per-poll rates swings with every empty poll of a slow feed)
    entry["items"] = entry.get("items", 0.0) * RATE_MEMORY + new
    entry["seconds"] = entry.get("seconds", 0.0) * RATE_MEMORY + (now - last_poll)
    rate = entry["items"] / entry["seconds"]
    lowest = max(interval, hint or 0.0)
    highest = max(max_interval or interval, lowest)
    wanted = 1 / rate if rate > 0 else highest
    entry["interval"] = min(max(wanted, lowest), highest)
    return entry["interval"]
