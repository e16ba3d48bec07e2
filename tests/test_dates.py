"""``transforms/dates.py``: one home for dates, every one timezone-aware UTC."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import feedparser
import pytest

from transforms.dates import as_utc, feed_entry_time, from_epoch, iso, parse_iso, parse_w3c

UTC = timezone.utc
CET = timezone(timedelta(hours=1))


def test_every_datetime_is_utc():
    assert as_utc(datetime(2026, 3, 2, 8)) == datetime(2026, 3, 2, 8, tzinfo=UTC)  # naive: UTC
    moved = as_utc(datetime(2026, 3, 2, 9, tzinfo=CET))
    assert moved == datetime(2026, 3, 2, 8, tzinfo=UTC) and moved.tzinfo == UTC
    assert as_utc(None) is None and iso(None) is None
    assert from_epoch(0) == datetime(1970, 1, 1, tzinfo=UTC)


def test_what_the_index_stores_reads_back_the_same():
    when = datetime(2026, 3, 2, 9, 30, tzinfo=CET)
    assert iso(when) == "2026-03-02T08:30:00+00:00"
    assert parse_iso(iso(when)) == when
    assert parse_iso("2026-03-02T08:30:00") == datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_iso("yesterday")  # the index holds ISO only: anything else is a bug


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-02", datetime(2026, 3, 2, tzinfo=UTC)),
        ("2026-03-02T08:00:00Z", datetime(2026, 3, 2, 8, tzinfo=UTC)),
        ("2026-03-02T09:00:00+01:00", datetime(2026, 3, 2, 8, tzinfo=UTC)),
        ("Mon, 02 Mar 2026 08:00:00 GMT", datetime(2026, 3, 2, 8, tzinfo=UTC)),
        ("", None),
        ("  ", None),
        (None, None),
        ("last tuesday", None),  # unknown, not guessed
        ("0001-01-01T00:00:00+01:00", None),  # before the calendar once in UTC
    ],
)
def test_a_sitemap_or_feed_date_is_w3c_or_rfc_2822_or_unknown(text, expected):
    assert parse_w3c(text) == expected


def test_a_feed_entry_is_dated_by_published_then_updated():
    rss = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        b"<item><link>https://a.example/1</link><pubDate>Mon, 02 Mar 2026 08:00:00 GMT</pubDate>"
        b"</item><item><link>https://a.example/2</link></item></channel></rss>"
    )
    first, second = feedparser.parse(rss).entries
    assert feed_entry_time(first) == datetime(2026, 3, 2, 8, tzinfo=UTC)
    assert feed_entry_time(second) is None
