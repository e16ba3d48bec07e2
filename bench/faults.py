"""Outages in one streaming run: the local Elasticsearch node SIGKILLed and restarted,
and a cluster write block, while a live feed keeps publishing; then what was lost,
duplicated, dead-lettered, and how long the sink waited.

    python bench/faults.py [--outages 3] [--down 45] [--block 30] [--every 4]

Needs the project's own local node running (`wirestream es start`): it kills and
starts it. Pages are the sample site's (each under a new URL); items appear two at a
time every ``--every`` seconds and stop a minute before the run ends. Prints one
table: published, indexed, lost, duplicated, dead letters, the sink's reconciliation
and its waiting time, the exit code, and the outage schedule as run.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.backfill import _CANONICAL, SITE, drop_indices  # noqa: E402


def main() -> int:
    from elasticsearch import Elasticsearch

    from pipeline.services import local_es
    from pipeline.services.sample_site import FixtureServer, LiveFeed
    from transforms.dead_letters import read_dead_letters

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outages", type=int, default=3, help="node kills (default 3)")
    parser.add_argument("--down", type=float, default=45, help="seconds the node stays down")
    parser.add_argument("--block", type=float, default=30, help="seconds of write block (0: none)")
    parser.add_argument("--every", type=float, default=4, help="seconds between new items")
    args = parser.parse_args()
    status = local_es.status()
    if not status.get("ours"):
        print("error: start the project's node first (`wirestream es start`)", file=sys.stderr)
        return 2
    url = status["url"]
    client = Elasticsearch(url, request_timeout=30)
    prefix = f"bench-faults-{uuid.uuid4().hex[:8]}"
    pages = [_CANONICAL.sub(b"", p.read_bytes()) for p in sorted(SITE.glob("**/*.html"))]
    with tempfile.TemporaryDirectory() as tmp, FixtureServer(Path(tmp)) as server:
        live = LiveFeed(server, pages, every=args.every)
        dead_dir = Path(tmp) / "dead-letter"
        profile = Path(tmp) / "profile.yaml"
        profile.write_text(
            f"feeds: [{{name: live, url: '{live.feed_url}', interval: 5, language: en}}]\n"
            f"elasticsearch: {{url: '{url}', index_prefix: {prefix}, alias: {prefix}}}\n"
            "fetch: {allow_private_addresses: true, timeout: 5, retries: 0}\n"
            f"dead_letter_dir: '{dead_dir}'\n"
        )
        duration = 60 + args.outages * (args.down + 60) + (args.block + 40 if args.block else 0)
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "run", "--config", str(profile),
             "--duration", str(int(duration))],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        live.thread.start()
        schedule = []
        try:
            time.sleep(40)
            for _ in range(args.outages):
                at = time.monotonic() - started
                local_es.stop(timeout=0)  # SIGKILL
                time.sleep(args.down)
                local_es.start()
                schedule.append(f"killed at {at:.0f}s, back at {time.monotonic() - started:.0f}s")
                time.sleep(20)
            if args.block:
                at = time.monotonic() - started
                client.cluster.put_settings(persistent={"cluster.blocks.read_only": True})
                time.sleep(args.block)
                client.cluster.put_settings(persistent={"cluster.blocks.read_only": None})
                schedule.append(f"write block {at:.0f}s to {time.monotonic() - started:.0f}s")
            time.sleep(max(0.0, duration - 60 - (time.monotonic() - started)))
        finally:
            live.stop.set()
            client.options(ignore_status=400).cluster.put_settings(
                persistent={"cluster.blocks.read_only": None}
            )
        out, _ = proc.communicate(timeout=duration + 1200)
        published = set(live.published())
        client.indices.refresh(index=prefix)
        hits = client.search(index=prefix, size=10_000, query={"match_all": {}})["hits"]["hits"]
        urls = [h["_source"]["url"] for h in hits]
        dead = read_dead_letters([str(dead_dir)])
        drop_indices(client, prefix)
    sink = re.search(r"sink: .*", out)
    rows = [
        ("exit code", proc.returncode),
        ("run", f"{time.monotonic() - started:.0f}s ({duration:.0f}s streaming)"),
        ("published", len(published)),
        ("indexed", len(set(urls) & published)),
        ("lost", len(published - set(urls))),
        ("duplicated", len(urls) - len(set(urls))),
        ("dead letters", f"{len(dead)} ({', '.join(sorted({d['reason'] for d in dead}))})"),
        ("sink", sink.group(0) if sink else "(no reconciliation line)"),
        *(("outage", line) for line in schedule),
    ]
    for name, value in rows:
        print(f"{name:>14}  {value}")
    if proc.returncode != 0:
        print(out[-3000:])
    return 0 if proc.returncode == 0 and published <= set(urls) else 1


if __name__ == "__main__":
    raise SystemExit(main())
