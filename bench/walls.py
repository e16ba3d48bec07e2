"""How often the wall rules (``transforms/walls.py``) fire, on pages that are walls and on
pages that are articles.

    python bench/walls.py

The rules were written from the vendors' own pages (the fixtures in ``tests/data/walls``,
modelled on them), never tuned on the articles below; this bench reports, on every real
article page we have (the three ``../shared/bench`` sets, 13 languages, and trafilatura's
news pages) and on the HTML responses of the WARC fixtures, how many would be taken
for a wall (a false alarm loses an article) and which rule fired, beside what the
extractor alone does with the walls (what a user of trafilatura gets: "articles").
"""

from __future__ import annotations

import contextlib
import gzip
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.extraction import SHARED, load_pages  # noqa: E402
from transforms.extract import ExtractError, extract_article  # noqa: E402
from transforms.fetch import decode_html  # noqa: E402
from transforms.walls import find_paywall, find_wall  # noqa: E402

WALLS = ROOT / "tests" / "data" / "walls"
MULTILINGUAL = SHARED / "bench" / "fundus-multilingual-dev"
WARCS = SHARED / "fixtures" / "warc"


def article_pages() -> list[tuple[str, str, str]]:
    """(set, url, html) of every real article page in ``../shared``."""
    pages, _ = load_pages()
    found = [(p["set"], p["url"], p["html"]) for p in pages]
    for line in (MULTILINGUAL / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        html = decode_html(gzip.decompress((MULTILINGUAL / row["file"]).read_bytes()))
        found.append(("multilingual", row["url"], html))
    return found


def warc_pages() -> list[tuple[str, str, str, int, dict[str, str]]]:
    """(set, url, html, status, headers) of the HTML responses in the WARC fixtures."""
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    found = []
    for path in sorted(WARCS.glob("*/*.warc*")):
        with open(path, "rb") as stream, contextlib.suppress(OSError):  # the broken ones
            for record in ArchiveIterator(stream, record_types=WarcRecordType.response):
                http = record.http_headers
                if http is None:
                    continue
                headers = {k.lower(): v for k, v in http.items()}
                if "html" not in headers.get("content-type", ""):
                    continue
                body = record.reader.read()
                url = record.headers.get("WARC-Target-URI", "")
                found.append(("warc", url, decode_html(body), http.status_code, headers))
    return found


def paywall_of(html: str, url: str):
    """The paywall verdict after extraction (None when the page has no article at all)."""
    try:
        article = extract_article(html, url)
    except ExtractError:
        return find_paywall(html, 0)
    return find_paywall(html, len(article.body.split()))


def main() -> int:
    manifest = json.loads((WALLS / "manifest.json").read_text(encoding="utf-8"))
    print(f"{'wall fixture':32} {'expected':14} {'found':14} evidence / what trafilatura makes")
    caught = 0
    for name, case in manifest.items():
        html = (WALLS / name).read_text(encoding="utf-8")
        wall = find_wall(html, "https://news.example.com/a", case["status"], case["headers"])
        wall = wall or paywall_of(html, "https://news.example.com/a")
        caught += bool(wall and wall.kind == case["kind"])
        try:
            plain = f"an article of {len(extract_article(html, 'https://x.example/a').body)} chars"
        except ExtractError as exc:
            plain = f"no article ({exc.reason})"
        evidence = wall.evidence if wall else "-"
        print(f"{name:32} {case['kind']:14} {wall.kind if wall else '-':14} {evidence} / {plain}")
    print(f"walls recognised: {caught} of {len(manifest)}\n")

    rows = [(s, u, h, 200, {}) for s, u, h in article_pages()] + warc_pages()
    alarms: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    for set_name, url, html, status, headers in rows:
        totals[set_name] += 1
        wall = find_wall(html, url, status, headers) or paywall_of(html, url)
        if wall:
            alarms[set_name] += 1
            print(f"  {set_name}: {url[:80]} -> {wall.kind} ({wall.evidence})")
    print(f"{'article set':14} {'pages':>6} {'taken for walls':>16}")
    for set_name, total in totals.items():
        print(f"{set_name:14} {total:6} {alarms[set_name]:16}")
    print(f"{'all':14} {sum(totals.values()):6} {sum(alarms.values()):16}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
