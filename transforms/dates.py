"""Dates, in one place: every datetime wirestream keeps is timezone-aware UTC.

The parsers differ in what they accept, on purpose, and each says so:

- ``parse_iso``: ISO 8601 as the index stores it (what ``iso`` wrote); raises on
  anything else, which would be a bug, not bad input.
- ``parse_w3c``: a sitemap's W3C datetime or a feed's RFC 2822 date; None for anything
  else (a sitemap's junk date is unknown, not guessed).
- ``feed_entry_time``: what feedparser read from an entry.
- ``transforms.page_meta.parse_date`` (a page's own dates, with a plausibility check)
  and ``transforms.sources.metadata.parse_date`` (a sidecar's, which must name a year:
  a validation error, not None) keep their stricter contracts beside the pages and
  sidecars they read.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any


def as_utc(value: datetime | None) -> datetime | None:
    """Return ``value`` in UTC; a naive datetime is taken to be UTC already."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def iso(value: datetime | None) -> str | None:
    """Return ``value`` as the ISO 8601 text the index stores (UTC), or None."""
    return value.astimezone(timezone.utc).isoformat() if value else None


def from_epoch(seconds: float) -> datetime:
    """Return the UTC datetime of epoch ``seconds``."""
    return datetime.fromtimestamp(float(seconds), tz=timezone.utc)


def parse_iso(text: str | None) -> datetime | None:
    """Return the UTC datetime of ISO 8601 ``text`` (None for empty text)."""
    return as_utc(datetime.fromisoformat(text)) if text else None


def parse_w3c(text: str | None) -> datetime | None:
    """Return a W3C datetime (``2026-03-02``, ``...T08:00:00Z``) or RFC 2822 date in
    UTC; None for empty text, any other form, or a date at the edge of the calendar."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        try:
            value = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    try:
        return as_utc(value)
    except (OverflowError, ValueError):
        return None


def feed_entry_time(entry: Any) -> datetime | None:
    """Return when a feedparser entry was published (else updated, else created)."""
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = dict.get(entry, key)  # plain lookup: no feedparser updated/published aliasing
        if value:
            return from_epoch(calendar.timegm(value))
    return None
