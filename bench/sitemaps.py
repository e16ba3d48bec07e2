"""Sitemap parsing: time and peak memory against a file's size, side by side in one run.

    python bench/sitemaps.py [--sizes 1000 10000 50000 60000]

For each size, a Google News sitemap of that many URLs (title, date, publication,
keywords: about 450 bytes a URL) is built in memory, gzip'd, and parsed by
``transforms.sitemap_xml.parse_sitemap`` as the stream and the backfill do. Printed per
size: the document's bytes (inflated and gzip'd), URLs kept and counted past the cap,
parse time and URLs/s (untraced), and the peak Python allocation of a second, traced
parse (tracemalloc) beside the
inflated size: the streaming parser should hold the entries it keeps, not the tree.
A 60 MiB gzip bomb is parsed last: it must fail at the cap, quickly, in bounded memory.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transforms.sitemap_xml import SitemapTooLarge, parse_sitemap  # noqa: E402

HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?><urlset '
    'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
    'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">'
)


def news_sitemap(count: int) -> bytes:
    urls = (
        f"<url><loc>https://news.example/2026/12/03/story-{n}.html</loc>"
        "<lastmod>2026-12-03T08:00:00+00:00</lastmod><news:news><news:publication>"
        "<news:name>The Example</news:name><news:language>en</news:language>"
        "</news:publication><news:publication_date>2026-12-03T07:30:00+00:00"
        f"</news:publication_date><news:title>Story number {n} about the council budget"
        "</news:title><news:keywords>council, budget, vote</news:keywords></news:news></url>"
        for n in range(count)
    )
    return (HEAD + "".join(urls) + "</urlset>").encode()


def parse(data: bytes) -> object:
    try:
        return parse_sitemap(data, "https://news.example/news-sitemap.xml.gz")
    except SitemapTooLarge as exc:
        return exc


def measure(data: bytes) -> tuple[object, float, int]:
    """Return the parse's result, its time (untraced) and its peak allocation (traced)."""
    started = time.perf_counter()
    result = parse(data)
    elapsed = time.perf_counter() - started
    tracemalloc.start()
    parse(data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, elapsed, peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 50_000, 60_000])
    args = parser.parse_args()
    print(
        f"{'URLs':>7} {'inflated MB':>11} {'gzip MB':>8} {'kept':>7} {'past cap':>8} "
        f"{'seconds':>8} {'URLs/s':>8} {'peak MB':>8} {'peak/inflated':>13}"
    )
    for size in args.sizes:
        raw = news_sitemap(size)
        packed = gzip.compress(raw, 6)
        sitemap, elapsed, peak = measure(packed)
        kept, past = len(sitemap.entries), sitemap.truncated  # type: ignore[attr-defined]
        print(
            f"{size:>7} {len(raw) / 1e6:>11.1f} {len(packed) / 1e6:>8.2f} {kept:>7} {past:>8} "
            f"{elapsed:>8.2f} {size / elapsed:>8.0f} {peak / 1e6:>8.1f} {peak / len(raw):>13.2f}"
        )
    bomb = gzip.compress(b" " * (60 << 20))
    result, elapsed, peak = measure(bomb)
    print(
        f"gzip bomb: {len(bomb) / 1e3:.0f} KB inflating to 60 MiB -> "
        f"{type(result).__name__} in {elapsed:.2f} s, peak {peak / 1e6:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
