"""Documents/second for one real-page WARC backfill on Prism (LOOPBACK, one Python
process), Beam's DirectRunner with 1 and N worker processes (the default without Flink)
and the local Flink cluster with 1 slot and N slots, side by side, with the stage costs
measured alone in the same run.

    python bench/scaling.py [--records 600] [--slots 2] [--no-flink] [--es-url URL]

The WARC holds ``--records`` responses of the English real pages in ``../shared/bench``
(``bench/peers.py``'s archive: each under its own URL, a unique word opening every
paragraph), so every record is tagged and none is a copy whose entities a backfill could
reuse. Each configuration backfills it into a throw-away index (deleted after); the
local Flink cluster is restarted with the slots each needs and stopped at the end
unless it was running before. Stage costs (extraction, normalisation, NER) are timed in
this process on the same records, so "plumbing" = 1 - (per-core rate / rate the stage
costs alone allow). Targets (issue 27): N processes >= 1.8x 1 process; per-core cost
within 1.2x of the stages' (plumbing <= 17%).
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


def stage_costs(warc: Path, pages: int) -> dict[str, float]:
    """Return the mean seconds per article of extraction, normalisation and NER, run
    alone in this process on the first ``pages`` records of ``warc`` (after one warm-up
    record): the pages the backfills read, each tagged, as the backfills tag each."""
    import itertools

    from bench.peers import _records
    from pipeline.config import EnrichSettings
    from transforms.enrich import load_model, tag_entities
    from transforms.extract import ExtractError, extract_article
    from transforms.fetch import decode_html
    from transforms.normalize import normalize_article

    nlp = load_model(EnrichSettings().models["en"])
    totals = {"extract": 0.0, "normalize": 0.0, "ner": 0.0}
    done = 0
    for number, (url, payload) in enumerate(itertools.islice(_records(warc), pages + 1)):
        html = decode_html(payload)
        clock = time.process_time
        started = clock()
        try:
            article = extract_article(html, url)
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


def run_backfill(warc: Path, es_url: str, runner: list[str], tmp: Path) -> dict:
    """Backfill ``warc`` with the ``runner`` arguments into a throw-away index; return the
    summary."""
    from elasticsearch import Elasticsearch

    prefix = f"bench-scaling-{uuid.uuid4().hex[:8]}"
    profile, summary = tmp / f"{prefix}.yaml", tmp / f"{prefix}.json"
    command = backfill_command(warc, profile, summary, es_url, prefix, [*runner, "--redo"])
    client = Elasticsearch(es_url, request_timeout=60)
    started = time.perf_counter()
    try:
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(
                f"{' '.join(runner)} run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
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
        "--stage-pages", type=int, default=200, help="records timed alone (default 200)"
    )
    parser.add_argument("--no-flink", action="store_true", help="only Prism and DirectRunner")
    args = parser.parse_args()
    from bench.peers import write_warc
    from pipeline.services import flink
    from pipeline.services.runners import direct_args

    shared = Path(os.environ.get("WIRESTREAM_SHARED", ROOT.parent / "shared"))
    if not (shared / "bench").is_dir():
        raise SystemExit(f"needs the real pages of {shared}/bench (set WIRESTREAM_SHARED)")
    was_running = flink.status()
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        warc = tmp / "real.warc.gz"
        write_warc(warc, args.records, distinct=True)
        costs = stage_costs(warc, args.stage_pages)
        configs = [
            ("prism (LOOPBACK)", ["--runner", "prism"], 0, 1),
            ("direct, 1 process", direct_args(1), 0, 1),
            (f"direct, {args.slots} processes", direct_args(args.slots), 0, args.slots),
        ]
        if not args.no_flink:
            configs.append(("flink, 1 slot", ["--runner", "flink"], 1, 1))
            configs.append(
                (f"flink, {args.slots} slots", ["--runner", "flink"], args.slots, args.slots)
            )
        try:
            for label, runner, slots, cores in configs:
                if slots:
                    flink.stop()
                    flink.start(slots=slots)
                print(f"running {label} ...", file=sys.stderr, flush=True)
                rows.append((label, cores, run_backfill(warc, args.es_url, runner, tmp)))
        finally:
            flink.stop()
            if was_running:
                flink.start(slots=was_running["slots"])

    ideal = 1 / sum(costs.values())
    print(
        f"\n{args.records} WARC records (English real pages, distinct bodies: NER on each, "
        f"no copies), {os.cpu_count()} cores"
    )
    print(
        "stage costs alone (CPU per article): "
        + ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in costs.items())
        + f" -> {ideal:.2f} articles/s per core"
    )
    base = rows[0][2]["indexed"] / rows[0][2]["seconds"]
    one_slot = rows[1][2]["indexed"] / rows[1][2]["seconds"]
    header = f"{'runner':<24} {'indexed':>7} {'in index':>8} {'job s':>7} {'docs/s':>7} "
    print(header + f"{'x prism':>8} {'x 1 proc':>8} {'per core':>8} {'plumbing':>8}")
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
