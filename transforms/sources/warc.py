"""Read HTML responses from WARC files (CC-NEWS), split into byte blocks across workers.

A file is cut into blocks of ``block_bytes``; each block reads the records that
*start* inside it, beginning at the first record boundary at or after its first
byte (a gzip member holding ``WARC/`` for ``.warc.gz``, a ``WARC/1.x`` line for
plain files). So blocks of one file run in parallel and every record is read once.

fastwarc parses the records (several times faster than warcio). A record that
cannot be read is a ``Failure`` with a reason, never a crash and never silence:
``truncated`` (fewer bytes than its Content-Length), ``bad_record`` (unparseable
header; reading resumes at the next boundary), ``not_warc`` (e.g. an ARC file).
Responses that are not HTML or not status 200 are counted and skipped.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import BinaryIO

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from fastwarc.warc import ArchiveIterator, WarcRecordType

from transforms.article import FeedItem, Page
from transforms.dead_letters import Failure, dead_letter
from transforms.fetch import HTML_TYPES, decode_html
from transforms.guard import guarded
from transforms.sources.records import count_skip, http_body, parse_http_response
from transforms.urls import canonicalize_url

log = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b\x08"
SCAN_BYTES = 1 << 20
UNREADABLE = (WarcRecordType.unknown, WarcRecordType.no_type)


@dataclass(frozen=True)
class WarcBlock:
    """The records of ``path`` that start in ``[start, stop)``."""

    path: str
    start: int
    stop: int


def is_warc_path(path: str) -> bool:
    """Return whether ``path`` names a WARC file (plain or gzipped)."""
    return path.lower().endswith((".warc", ".warc.gz"))


def split_blocks(
    path: str, size: int, block_bytes: int, splittable: bool = True
) -> list[WarcBlock]:
    """Return the blocks of a ``size``-byte file, each ``block_bytes`` long or less.

    An unsplittable file is one block, whose stop lies past the end of the file
    (positions reported inside one big gzip member may equal the file size).
    """
    if not splittable or size <= block_bytes:
        return [WarcBlock(path, 0, size + 1)]
    return [
        WarcBlock(path, start, min(start + block_bytes, size + 1))
        for start in range(0, size, block_bytes)
    ]


def member_per_record(stream: BinaryIO, probe_bytes: int = 16 << 20) -> bool:
    """Return whether a gzipped WARC has one gzip member per record (so it can be split).

    Only the first member is inspected: it must end within ``probe_bytes`` and be
    followed by nothing or by another member opening a WARC record.
    """
    stream.seek(0)
    inflater, consumed = zlib.decompressobj(wbits=31), 0
    try:
        while not inflater.eof and consumed < probe_bytes:
            chunk = stream.read(1 << 16)
            if not chunk:
                return False
            consumed += len(chunk)
            inflater.decompress(chunk)
    except zlib.error:
        return False
    if not inflater.eof:
        return False
    rest = inflater.unused_data + stream.read(4096)
    return not rest or _opens_warc_member(rest)


def plan_blocks(metadata, block_bytes: int) -> list[WarcBlock]:
    """Return the blocks of one matched file (``FileMetadata``)."""
    splittable = True
    with FileSystems.open(metadata.path, compression_type="uncompressed") as stream:
        if stream.read(3) == GZIP_MAGIC:
            splittable = member_per_record(stream)
    return split_blocks(metadata.path, metadata.size_in_bytes, block_bytes, splittable)


def _opens_warc_member(data: bytes) -> bool:
    try:
        head = zlib.decompressobj(wbits=31).decompress(data[:4096], 16)
    except zlib.error:
        return False
    return head.startswith(b"WARC/")


def find_boundary(stream: BinaryIO, offset: int, gzipped: bool, limit: int) -> int | None:
    """Return the offset of the first record starting at or after ``offset`` and before
    ``limit``, or None."""
    position = offset
    while position < limit:
        stream.seek(max(position - 1, 0))
        window = stream.read(SCAN_BYTES + 4096 + 1)
        if position > 0:
            previous, window = window[:1], window[1:]
        else:
            previous = b"\n"
        if not window:
            return None
        for index in _candidates(window, previous, gzipped):
            if position + index >= limit:
                return None
            if not gzipped or _opens_warc_member(window[index:]):
                return position + index
        position += SCAN_BYTES
    return None


def _candidates(window: bytes, previous: bytes, gzipped: bool):
    marker = GZIP_MAGIC if gzipped else b"WARC/1."
    index = window.find(marker)
    while 0 <= index < SCAN_BYTES:
        before = window[index - 1 : index] if index else previous
        if gzipped or before == b"\n":
            yield index
        index = window.find(marker, index + 1)


def record_to_page(record, path: str) -> Page | Failure | str:
    """Return the Page of an HTML response record, a ``Failure``, or a skip reason."""
    uri = record.headers.get("WARC-Target-URI", "").strip().strip("<>")
    where = uri or f"{path}@{record.stream_pos}"
    block = record.reader.read()
    if len(block) < record.content_length:
        return Failure(
            "read",
            "truncated",
            where,
            f"{path}@{record.stream_pos}: {len(block)} of {record.content_length} bytes",
        )
    try:
        response = parse_http_response(block)
    except ValueError as exc:
        return Failure("read", "bad_http", where, f"{path}@{record.stream_pos}: {exc}")
    if response.status != 200:
        return "redirect" if 300 <= response.status < 400 else f"http_{response.status}"
    content_type = response.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() not in HTML_TYPES:
        return "not_html"
    try:
        body = http_body(response)
    except ValueError as exc:
        return Failure("read", "bad_encoding", where, f"{path}@{record.stream_pos}: {exc}")
    fetched_at = record.record_date or datetime.now(timezone.utc)
    if fetched_at.tzinfo is None:
        fetched_at = fetched_at.replace(tzinfo=timezone.utc)
    url = canonicalize_url(uri)
    return Page(
        url=url,
        final_url=url,
        html=decode_html(body, content_type),
        fetched_at=fetched_at,
        item=FeedItem(url=url, feed_url=path),
    )


def read_block(stream: BinaryIO, block: WarcBlock, gzipped: bool):
    """Yield a Page, Failure or skip reason (str) for each response record of ``block``.

    After an unreadable record, reading resumes at the next record boundary; one
    corrupt stretch is reported once.
    """
    start = find_boundary(stream, block.start, gzipped, block.stop)
    if start is None and block.start == 0:
        yield Failure("read", "not_warc", block.path, "no WARC record found")
    # Records of a single-member gzip file share one stream position: a record's
    # key is (position, index among records at that position).
    done_through, reported = (-1, 0), False
    while start is not None:
        stream.seek(start)
        position, progressed, key = start, False, (start, -1)
        try:
            for record in ArchiveIterator(stream, parse_http=False, min_content_length=0):
                position = record.stream_pos
                key = (position, key[1] + 1 if position == key[0] else 0)
                if key <= done_through:
                    continue
                if position >= block.stop:
                    return
                progressed, done_through = True, key
                if record.record_type in UNREADABLE:
                    raise OSError("unparseable WARC header")
                if record.record_type == WarcRecordType.response:
                    yield record_to_page(record, block.path)
            return
        except OSError as exc:
            if progressed or not reported:
                yield Failure("read", "bad_record", f"{block.path}@{position}", str(exc))
            reported = True
        start = find_boundary(stream, position + 1, gzipped, block.stop)


class ReadWarcBlockDoFn(beam.DoFn):
    """WarcBlock -> Page; unreadable records go to ``dead_letter``."""

    def __init__(self) -> None:
        self.read = Metrics.counter("wirestream", "read")

    @guarded("read", partial=True)
    def process(self, block: WarcBlock):
        with FileSystems.open(block.path, compression_type="uncompressed") as stream:
            gzipped = stream.read(3) == GZIP_MAGIC
            for result in read_block(stream, block, gzipped):
                self.read.inc()
                if isinstance(result, Page):
                    yield result
                elif isinstance(result, Failure):
                    yield dead_letter(result)
                else:
                    count_skip(result)


class ReadWarcPages(beam.PTransform):
    """File patterns (any Beam filesystem) -> Page, one per HTML response record."""

    def __init__(self, patterns: list[str], block_bytes: int) -> None:
        super().__init__()
        self.patterns = patterns
        self.block_bytes = block_bytes

    def expand(self, pbegin):
        block_bytes = self.block_bytes
        return (
            pbegin
            | "Patterns" >> beam.Create(self.patterns)
            | "Match" >> fileio.MatchAll()
            | "Blocks" >> beam.FlatMap(plan_blocks, block_bytes)
            | "Spread" >> beam.Reshuffle()
            | "ReadRecords"
            >> beam.ParDo(ReadWarcBlockDoFn()).with_outputs("dead_letter", main="pages")
        )
