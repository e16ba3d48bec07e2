"""How many inputs a backfill has (WARC response records, feed entries, listed URLs,
archive files): the total of the progress bar, counted by the launcher."""

from __future__ import annotations

from datetime import datetime, timezone

import feedparser
from apache_beam.io.filesystems import FileSystems
from fastwarc.warc import ArchiveIterator, WarcRecordType

from transforms.sources.files import FileInput
from transforms.sources.url_lists import list_rows


def matched_paths(pattern: str, suffixes: tuple[str, ...] | None = None) -> list[str]:
    """Return the files matching ``pattern`` (any Beam filesystem), optionally by suffix."""
    paths = [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    return [p for p in paths if suffixes is None or p.lower().endswith(suffixes)]


def count_warc_responses(path: str) -> int:
    """Return the number of response records fastwarc can read in a WARC file."""
    count = 0
    with FileSystems.open(path, compression_type="uncompressed") as stream:
        try:
            for record in ArchiveIterator(stream, parse_http=False, min_content_length=0):
                count += record.record_type == WarcRecordType.response
        except OSError:
            pass  # the pipeline reports the unreadable record; here it just is not counted
    return count


def _read(path: str) -> bytes:
    with FileSystems.open(path) as handle:
        return handle.read()


def count_feed_entries(path: str) -> int:
    """Return the entries of a saved feed (1 for a feed that lists none: it is read)."""
    return max(len(feedparser.parse(_read(path)).entries), 1)


def count_listed_urls(path: str) -> int:
    """Return the URLs a URL list names."""
    data = _read(path)
    return sum(1 for _ in list_rows(FileInput(path, "", data, datetime.now(timezone.utc))))


def count_one(_path: str) -> int:
    """An archived text file is one input."""
    return 1
