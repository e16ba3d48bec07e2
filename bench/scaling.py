"""Documents/second for one real-page WARC backfill on Prism (LOOPBACK, one Python
process), the local Flink cluster with 1 slot and with every core, side by side, with
the stage costs measured alone in the same run.

    python bench/scaling.py [--records 600] [--slots 2] [--es-url http://127.0.0.1:9200]

The WARC holds ``--records`` responses of the real pages in ``../shared/bench`` (each
under its own URL). Each configuration backfills it into a throw-away index (deleted
after) with entity tagging on; the local Flink cluster is restarted with the slots
each needs and stopped at the end unless it was running before. Stage costs
(extraction, normalisation, NER) are timed in this process on the same pages, so
"plumbing" = 1 - (per-core rate / rate the stage costs alone allow).
Targets (issue 11): flink N slots >= 1.8x flink 1 slot (N=2); the all-cores default
(``--runner auto`` with the cluster up) >= 1.8x Prism; plumbing <= 20%.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.backfill import backfill_command, drop_indices  # noqa: E402


def stage_costs(shared: Path, pages: int) -> dict[str, float]:
    """Return the mean seconds per article of extraction, normalisation and NER, run
    alone in this process on the first ``pages`` real pages (after one warm-up page):
    by default every page, the mix the WARC cycles through."""
    import gzip

    from pipeline.config import EnrichSettings
    from tests.support.real_pages import _CANONICAL, real_page_files
    from transforms.enrich import load_model, tag_entities
    from transforms.extract import ExtractError, extract_article
    from transforms.fetch import decode_html
    from transforms.normalize import normalize_article

    nlp = load_model(EnrichSettings().models["en"])
    files = real_page_files(shared)[: pages + 1]
    totals = {"extract": 0.0, "normalize": 0.0, "ner": 0.0}
    done = 0
    for number, path in enumerate(files):
        html = decode_html(_CANONICAL.sub(b"", gzip.decompress(path.read_bytes())))
        clock = time.process_time
        started = clock()
        try:
            article = extract_article(html, f"https://site{number}.example/{number}")
        except ExtractError:
            continue
        extracted = clock()
        article = normalize_article(article)
        normalized = clock()
        list(tag_entities(nlp, [article], max_chars=100_000))  # a generator: run it
        tagged = clock()
        if number == 0:
            continue  # warm-up: first-call costs are not per article
        totals["extract"] += extracted - started
        totals["normalize"] += normalized - extracted
        totals["ner"] += tagged - normalized
        done += 1
    return {name: seconds / done for name, seconds in totals.items()}


def run_backfill(warc: Path, es_url: str, runner: str, tmp: Path) -> dict:
    """Backfill ``warc`` on ``runner`` into a throw-away index; return the summary."""
    from elasticsearch import Elasticsearch

    prefix = f"bench-scaling-{uuid.uuid4().hex[:8]}"
    profile, summary = tmp / f"{prefix}.yaml", tmp / f"{prefix}.json"
    command = backfill_command(
        warc, profile, summary, es_url, prefix, ["--runner", runner, "--redo"]
    )
    client = Elasticsearch(es_url, request_timeout=60)
    started = time.perf_counter()
    try:
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"{runner} run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        result = json.loads(summary.read_text())
        client.indices.refresh(index=prefix)
        result["in_index"] = client.count(index=prefix)["count"]
    finally:
        drop_indices(client, prefix)
        client.close()
    return {**result, "wall": wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=600)
    parser.add_argument("--slots", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--es-url", default="http://127.0.0.1:9200")
    parser.add_argument(
        "--stage-pages", type=int, default=200, help="pages timed alone (default: all of them)"
    )
    args = parser.parse_args()
    from pipeline.services import flink
    from tests.support.real_pages import write_real_warc

    shared = Path(os.environ.get("WIRESTREAM_SHARED", ROOT.parent / "shared"))
    if not (shared / "bench").is_dir():
        raise SystemExit(f"needs the real pages of {shared}/bench (set WIRESTREAM_SHARED)")
    was_running = flink.status()
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        warc = tmp / "real.warc.gz"
        write_real_warc(warc, shared, args.records)
        costs = stage_costs(shared, args.stage_pages)
        configs = [("prism (LOOPBACK)", "prism", 0), ("flink, 1 slot", "flink", 1)]
        configs.append((f"flink, {args.slots} slots (auto)", "auto", args.slots))
        try:
            for label, runner, slots in configs:
                if slots:
                    flink.stop()
                    flink.start(slots=slots)
                print(f"running {label} ...", file=sys.stderr, flush=True)
                rows.append((label, max(slots, 1), run_backfill(warc, args.es_url, runner, tmp)))
        finally:
            flink.stop()
            if was_running:
                flink.start(slots=was_running["slots"])

    ideal = 1 / sum(costs.values())
    print(f"\n{args.records} real-page WARC records, entity tagging on, {os.cpu_count()} cores")
    print(
        "stage costs alone (CPU per article): "
        + ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in costs.items())
        + f" -> {ideal:.2f} articles/s per core"
    )
    base = rows[0][2]["indexed"] / rows[0][2]["seconds"]
    one_slot = rows[1][2]["indexed"] / rows[1][2]["seconds"]
    header = f"{'runner':<24} {'indexed':>7} {'in index':>8} {'job s':>7} {'docs/s':>7} "
    print(header + f"{'x prism':>8} {'x 1 slot':>8} {'per core':>8} {'plumbing':>8}")
    for label, cores, result in rows:
        rate = result["indexed"] / result["seconds"]
        per_core = rate / cores
        print(
            f"{label:<24} {result['indexed']:>7} {result['in_index']:>8} "
            f"{result['seconds']:>7.1f} {rate:>7.2f} {rate / base:>8.2f} "
            f"{rate / one_slot:>8.2f} {per_core:>8.2f} {1 - per_core / ideal:>8.0%}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
