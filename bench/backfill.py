"""Documents/second for a WARC backfill on the local runner, into the real Elasticsearch.

    python bench/backfill.py [--articles 1000] [--es-url http://127.0.0.1:9200] [-- BEAM ARGS]

Writes a WARC of ``--articles`` responses built from the sample site's pages (each
under its own URL, canonical links removed so every record is its own article),
runs ``wirestream backfill`` on it into a throw-away index prefix (deleted after),
and prints the run's summary, the documents/second, and how fast fastwarc and
warcio read the same file.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SITE = ROOT / "deploy" / "sample-site"
_CANONICAL = re.compile(rb'<link rel="canonical"[^>]*>|<meta property="og:url"[^>]*>')


def write_warc(path: Path, articles: int) -> None:
    """Write ``articles`` HTML responses from the sample pages, each at a distinct URL."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    pages = sorted(SITE.glob("**/*.html"))
    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        for number in range(articles):
            page = pages[number % len(pages)]
            host = f"site{number % 40}.example"
            url = f"https://{host}/{number}/{page.stem}"
            body = _CANONICAL.sub(b"", page.read_bytes()).replace(
                b"{{BASE}}", f"https://{host}".encode()
            )
            http = StatusAndHeaders(
                "200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1"
            )
            record = writer.create_warc_record(
                url, "response", payload=io.BytesIO(body), http_headers=http
            )
            writer.write_record(record)


def backfill_command(
    warc: Path,
    profile: Path,
    summary: Path,
    es_url: str,
    prefix: str,
    beam_args: list[str],
    extra: str = "",
) -> list[str]:
    """Write a profile for a throw-away index ``prefix`` and return the backfill command."""
    profile.write_text(
        f"elasticsearch: {{url: '{es_url}', index_prefix: {prefix}, alias: {prefix}}}\n"
        f"dead_letter_dir: '{profile.parent}/dead-letter'\n" + extra
    )
    return [
        sys.executable, "-m", "pipeline.cli", "backfill", str(warc), "--config", str(profile),
        "--no-progress", "--summary-json", str(summary), *beam_args,
    ]  # fmt: skip


def drop_indices(client, prefix: str) -> None:
    """Delete the indices and template of a throw-away index ``prefix``."""
    names = list(client.indices.get(index=f"{prefix}-*", allow_no_indices=True))
    if names:
        client.indices.delete(index=",".join(names))
    client.options(ignore_status=404).indices.delete_index_template(name=f"wirestream-{prefix}*")


def reader_speed(path: Path) -> dict[str, float]:
    """Return records/second for fastwarc and warcio reading every record body of ``path``."""
    from fastwarc.warc import ArchiveIterator as FastIterator
    from warcio.archiveiterator import ArchiveIterator as WarcioIterator

    speeds = {}
    for name, read in (
        ("fastwarc", lambda s: [r.reader.read() for r in FastIterator(s, parse_http=False)]),
        ("warcio", lambda s: [r.content_stream().read() for r in WarcioIterator(s)]),
    ):
        with open(path, "rb") as stream:
            started = time.perf_counter()
            count = len(read(stream))
            speeds[name] = count / (time.perf_counter() - started)
    return speeds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--es-url", default="http://127.0.0.1:9200")
    args, beam_args = parser.parse_known_args()
    from elasticsearch import Elasticsearch

    from pipeline.progress import format_summary

    prefix = f"bench-backfill-{uuid.uuid4().hex[:8]}"
    client = Elasticsearch(args.es_url, request_timeout=60)
    with tempfile.TemporaryDirectory() as tmp:
        warc, profile, summary = (
            Path(tmp) / "bench.warc.gz",
            Path(tmp) / "p.yaml",
            Path(tmp) / "s.json",
        )
        write_warc(warc, args.articles)
        command = backfill_command(warc, profile, summary, args.es_url, prefix, beam_args)
        started = time.perf_counter()
        try:
            proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
            wall = time.perf_counter() - started
            if proc.returncode != 0:
                print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
                return proc.returncode
            result = json.loads(summary.read_text())
            client.indices.refresh(index=prefix)
            in_index = client.count(index=prefix)["count"]
        finally:
            drop_indices(client, prefix)
        speeds = reader_speed(warc)
    runner = next((a for a in beam_args if a.startswith("--runner")), "--runner=PrismRunner")
    print(f"{args.articles} WARC records on {runner.split('=')[-1]} (batch)")
    print(format_summary(result, result["seconds"]))
    print(f"  documents in the index: {in_index}")
    print(
        f"  job time {result['seconds']:.1f}s: {result['indexed'] / result['seconds']:.1f} docs/s"
    )
    print(f"  wall time incl. start-up {wall:.1f}s: {result['indexed'] / wall:.1f} docs/s")
    print("  WARC read alone: " + ", ".join(f"{k} {v:,.0f} records/s" for k, v in speeds.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
