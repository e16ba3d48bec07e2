"""Stories end to end: a dated folder of ECB+ articles through ``wirestream backfill``.

    python bench/stories_backfill.py [--topics 12] [--copies 20] [--es-url URL]

Writes ECB+ documents of the first ``--topics`` topics as text files with sidecar
metadata (made-up dates: each event within 36 hours, a topic's two events 10 days apart)
and ``--copies`` verbatim copies by other outlets hours later; backfills them on Prism
into a throw-away index prefix of the real Elasticsearch (deleted after); prints the
stories pass, BCubed against the events, twin merges, the copies found, a re-run's
updates, and the Stories dashboard's panels from ``wirestream kibana check``.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from backfill import drop_indices  # noqa: E402
from stories import bcubed, pairwise_f1, twin_merges  # noqa: E402


def write_folder(docs: list[dict], folder: Path, copies: int) -> dict[str, str]:
    """Write the documents (and copies) with sidecars; return each URL's event."""
    rng = random.Random(3)
    base = datetime(2026, 2, 1, tzinfo=timezone.utc)
    labels = {}
    copied = set(rng.sample(range(len(docs)), copies))
    for n, doc in enumerate(docs):
        start = base + timedelta(days=2 * doc["topic"] + (10 if doc["half"] == "ecbplus" else 0))
        when = start + timedelta(hours=rng.uniform(0, 36))
        source = doc["source_domain"] or f"outlet{n % 17}.example"
        meta = {
            "url": f"https://{source}/{doc['doc_id']}",
            "title": doc["first_sentence"][:150],
            "published_at": when.isoformat(),
            "source": source,
        }
        versions = [(doc["doc_id"], meta)]
        if n in copied:
            republisher = f"republisher{n % 5}.example"
            later = when + timedelta(hours=rng.uniform(1, 6))
            copy = {"url": f"https://{republisher}/{doc['doc_id']}-copy", "source": republisher}
            versions.append((f"{doc['doc_id']}-copy", {**meta, **copy, "published_at": str(later)}))
        for name, sidecar in versions:
            (folder / f"{name}.txt").write_text(doc["text"])
            (folder / f"{name}.txt.json").write_text(json.dumps(sidecar))
            labels[sidecar["url"]] = doc["cluster_id"]
    return labels


def wirestream(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args], cwd=ROOT, capture_output=True, text=True
    )
    if done.returncode not in (0, 1):
        sys.exit(f"wirestream {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout + done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    parser.add_argument("--topics", type=int, default=12)
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--es-url", default="http://127.0.0.1:9200")
    args = parser.parse_args()
    corpus = Path(args.shared) / "bench" / "stories-dev" / "ecbplus" / "docs.jsonl"
    if not corpus.is_file():
        sys.exit(f"{corpus}: not found (the development sets live in ../shared)")
    from elasticsearch import Elasticsearch
    from elasticsearch.helpers import scan

    docs = [json.loads(line) for line in corpus.open()]
    docs = [d for d in docs if d["topic"] <= args.topics]
    prefix = f"bench-stories-{uuid.uuid4().hex[:8]}"
    client = Elasticsearch(args.es_url)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "articles"
        folder.mkdir()
        labels = write_folder(docs, folder, args.copies)
        profile = Path(tmp) / "profile.yaml"
        profile.write_text(
            f"elasticsearch:\n  url: {args.es_url}\n  index_prefix: {prefix}\n  alias: {prefix}\n"
            f"dead_letter_dir: {tmp}/dead-letter\n"
        )
        try:
            for run in ("first run", "re-run"):
                out = wirestream(
                    "backfill", str(folder), "--config", str(profile), "--runner", "prism"
                )
                line = next(x for x in out.splitlines() if x.startswith("stories: "))
                print(f"{run}: {line}")
            hits = list(scan(client, index=prefix, query={"query": {"match_all": {}}}))
            by_id = {h["_id"]: h["_source"] for h in hits}
            gold = [labels[h["_source"]["url"]] for h in hits]
            predicted = [h["_source"]["story_id"] for h in hits]
            p, r, f = bcubed(predicted, gold)
            topics = [int(g.split("_")[0]) for g in gold]
            print(
                f"\n{len(hits)} articles, {len(set(gold))} events: {len(set(predicted))} stories, "
                f"BCubed P {p:.3f} R {r:.3f} F1 {f:.3f}, pairwise F1 "
                f"{pairwise_f1(predicted, gold):.3f}, twin merges "
                f"{twin_merges(predicted, gold, topics)}"
            )
            originals = {s["url"]: s for s in by_id.values() if not s["url"].endswith("-copy")}
            copies = [s for s in by_id.values() if s["url"].endswith("-copy")]
            found = joined = 0
            for copy in copies:
                name = copy["url"].rsplit("/", 1)[1].removesuffix("-copy")
                (original,) = [s for u, s in originals.items() if u.endswith(f"/{name}")]
                found += (
                    bool(copy.get("duplicate_of")) and copy["copy_group"] == original["copy_group"]
                )
                joined += copy["story_id"] == original["story_id"]
            print(
                f"verbatim copies: {found}/{len(copies)} found, {joined} in their original's story"
            )
            check = wirestream("kibana", "check", "--config", str(profile))
            print("\nkibana check, Stories dashboard:")
            print("\n".join(x for x in check.splitlines() if " Stories / " in x))
        finally:
            drop_indices(client, prefix)


if __name__ == "__main__":
    main()
