"""Read matched files on any Beam filesystem and route what a parser makes of them.

A parser is a plain function ``FileInput -> iterable of FeedItem | Page | Article
| Failure``; ``ReadFiles`` sends each kind to its own output (``items`` to fetch,
``pages`` to extract, ``articles`` ready to normalise, ``dead_letter``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from transforms.article import Article, FeedItem, Page
from transforms.dead_letters import Failure, dead_letter
from transforms.guard import guarded

log = logging.getLogger(__name__)

OUTPUTS = {FeedItem: "items", Page: "pages", Article: "articles", Failure: "dead_letter"}


@dataclass
class FileInput:
    """One input file: where it is, the folder it was found under, its bytes and mtime."""

    path: str
    root: str
    data: bytes
    modified: datetime


Parser = Callable[[FileInput], Iterable[FeedItem | Page | Article | Failure]]


def read_optional(path: str) -> bytes | None:
    """Return the bytes of ``path``, or None when it does not exist."""
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path, compression_type="uncompressed") as handle:
        return handle.read()


def match_files(root_and_pattern: tuple[str, str], suffixes: tuple[str, ...]):
    """Yield (root, FileMetadata) for the files matching a pattern with one of ``suffixes``."""
    root, pattern = root_and_pattern
    for metadata in FileSystems.match([pattern])[0].metadata_list:
        if metadata.path.lower().endswith(suffixes):
            yield root, metadata


class ParseFileDoFn(beam.DoFn):
    """(root, FileMetadata) -> what ``parser`` finds, routed by type."""

    def __init__(self, parser: Parser, max_bytes: int) -> None:
        self.parser = parser
        self.max_bytes = max_bytes
        self.files = Metrics.counter("wirestream", "files_read")
        self.read = Metrics.counter("wirestream", "read")

    @guarded("read", partial=True)
    def process(self, element):
        root, metadata = element
        self.files.inc()
        if metadata.size_in_bytes > self.max_bytes:
            self.read.inc()
            size = f"{metadata.size_in_bytes} bytes"
            yield dead_letter(Failure("read", "too_large", metadata.path, size))
            return
        with FileSystems.open(metadata.path, compression_type="auto") as handle:
            data = handle.read()
        modified = datetime.fromtimestamp(metadata.last_updated_in_seconds or 0, tz=timezone.utc)
        for result in self.parser(FileInput(metadata.path, root, data, modified)):
            self.read.inc()
            if isinstance(result, Failure):
                yield dead_letter(result)
            else:
                yield beam.pvalue.TaggedOutput(OUTPUTS[type(result)], result)


class ReadFiles(beam.PTransform):
    """(root, glob) pairs -> {items, pages, articles, dead_letter} via ``parser``."""

    def __init__(
        self,
        roots: list[tuple[str, str]],
        suffixes: tuple[str, ...],
        parser: Parser,
        max_bytes: int,
    ) -> None:
        super().__init__()
        self.roots = roots
        self.suffixes = suffixes
        self.parser = parser
        self.max_bytes = max_bytes

    def expand(self, pbegin):
        return (
            pbegin
            | "Patterns" >> beam.Create(self.roots)
            | "Match" >> beam.FlatMap(match_files, self.suffixes)
            | "Spread" >> beam.Reshuffle()
            | "Parse"
            >> beam.ParDo(ParseFileDoFn(self.parser, self.max_bytes)).with_outputs(
                *OUTPUTS.values()
            )
        )
