"""A stream with a publisher that redesigns its pages and one that turns into a bot wall,
then what `wirestream sources` and `wirestream kibana check` show of them.

    python bench/source_health.py [--seconds 60] [--es-url http://127.0.0.1:9200]

Three publishers on loopback hosts, each with one feed polled every 2 s: *steady* keeps
publishing articles; *redesign* publishes 35 articles, then pages without bylines whose
body moved into the footer; *walled* publishes 15 articles, then answers every new page
with Cloudflare's challenge (HTTP 403, ``cf-mitigated: challenge``). Prints when each
change happened, the run's drift and wall lines, the sources table, and the live check
of the Source health dashboard's panels. Writes into a private index prefix, removed
after. Needs the local node (`wirestream es start`).
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.backfill import drop_indices  # noqa: E402
from pipeline.services.sample_site import FixtureServer  # noqa: E402
from tests.support.publishers import WALLS, Publisher, layouts  # noqa: E402

CHALLENGE = (WALLS / "cloudflare-challenge.html").read_text(encoding="utf-8")
CF_HEADERS = {"server": "cloudflare", "cf-mitigated": "challenge"}
NAMES = ("steady", "redesign", "walled")


def wirestream(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pipeline.cli", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)


def write_profile(path: Path, feeds: dict[str, Publisher], es_url: str, prefix: str) -> None:
    feed_list = [
        {"name": name, "url": p.feed_url, "interval": 2, "language": "en"}
        for name, p in feeds.items()
    ]
    profile = {
        "feeds": feed_list,
        "elasticsearch": {"url": es_url, "index_prefix": prefix},
        "fetch": {"allow_private_addresses": True, "host_min_delay": 0.05},
        "stats": {"window_seconds": 10},
        "dead_letter_dir": str(path.parent / "dead-letter"),
    }
    path.write_text(yaml.safe_dump(profile))


def show(run: subprocess.CompletedProcess, profile: Path) -> None:
    """Print the run's drift and wall lines, the sources table and the panels' check."""
    for line in (run.stdout + run.stderr).splitlines():
        if "drifted" in line or ("bot wall" in line and "left alone" in line):
            print("  log:", line.split(" ", 2)[-1][:160])
    print("\n$ wirestream sources")
    print(wirestream("sources", "--config", str(profile)).stdout)
    print("$ wirestream kibana check (the Source health panels)")
    check = wirestream("kibana", "check", "--config", str(profile))
    print("\n".join(f"  {ln.strip()}" for ln in check.stdout.splitlines() if "Source health" in ln))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--es-url", default="http://127.0.0.1:9200")
    args = parser.parse_args()
    from elasticsearch import Elasticsearch

    prefix = f"health-{uuid.uuid4().hex[:6]}"
    before, after = layouts()
    with tempfile.TemporaryDirectory() as folder, contextlib.ExitStack() as servers:
        hosts = [servers.enter_context(FixtureServer(folder)) for _ in range(3)]
        feeds = {name: Publisher(h, name) for name, h in zip(NAMES, hosts, strict=True)}
        for _ in range(35):
            feeds["steady"].publish(before)
            feeds["redesign"].publish(before)
        for _ in range(15):
            feeds["walled"].publish(before)
        changed: list[str] = []

        def change() -> None:
            time.sleep(args.seconds / 3)
            changed.append(datetime.now(timezone.utc).isoformat(timespec="seconds"))
            for _ in range(20):
                feeds["steady"].publish(before)
                feeds["redesign"].publish(after)
                feeds["walled"].publish(CHALLENGE, status=403, headers=CF_HEADERS)

        profile = Path(folder) / "profile.yaml"
        write_profile(profile, feeds, args.es_url, prefix)
        threading.Thread(target=change, daemon=True).start()
        run = wirestream("run", "--config", str(profile), "--duration", str(args.seconds))
        print(", ".join(f"{name} {p.server.base_url}" for name, p in feeds.items()))
        print(f"redesign and wall at {changed[0] if changed else '-'}; exit {run.returncode}")
        show(run, profile)
        drop_indices(Elasticsearch(args.es_url), prefix)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
