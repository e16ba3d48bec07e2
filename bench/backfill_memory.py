"""Peak memory of a WARC backfill's whole process tree at 1x, 4x and 16x the input.

    python bench/backfill_memory.py [--records 250] [--scales 1,4,16] [--no-enrich]
                                    [--es-url http://127.0.0.1:9200] [-- BEAM ARGS]

Builds a WARC of ``records x scale`` real pages (``../shared/bench/``, each under its
own URL), runs ``wirestream backfill`` on it into a throw-away index, samples the
proportional set size (PSS: shared pages split between the processes that map them,
so the sum is the tree's real footprint) of the CLI, the pipeline process, the
runner and any workers every 0.5 s, and prints, side by side: peak tree memory,
peak per process kind, documents/s, documents in the index, and each figure's
ratio to the 1x run. Memory flat in the input means the ratios stay near 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("WIRESTREAM_SHARED", ROOT.parent / "shared"))


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found += [int(c) for c in handle.read().split()]
    except OSError:
        pass
    return found


def process_tree(root: int) -> list[int]:
    """Return ``root`` and all its descendants (a double-forked child re-parents to
    init and is missed, so the CLI's own children must not daemonise)."""
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += _children(pid)
    return tree


def pss_bytes(pid: int) -> int:
    """Return the proportional set size of ``pid`` (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def kind(pid: int) -> str:
    """Return a short name for what ``pid`` runs (prism, java, pipeline, ...)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = handle.read().split(b"\0")
    except OSError:
        return "gone"
    name = Path(argv[0].decode(errors="replace")).name
    if "prism" in name:
        return "prism"
    if "java" in name:
        return "java"
    if b"worker_pool_main" in b" ".join(argv) or b"sdk_worker_main" in b" ".join(argv):
        return "sdk-worker"
    return "python"


class TreeSampler:
    """Samples the PSS of a process tree in a thread; keeps the peaks."""

    def __init__(self, root: int, interval: float = 0.5) -> None:
        self.root, self.interval = root, interval
        self.peak_total = 0
        self.peak_by_kind: dict[str, int] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            total, by_kind = 0, {}
            for pid in process_tree(self.root):
                size = pss_bytes(pid)
                total += size
                name = kind(pid)
                by_kind[name] = by_kind.get(name, 0) + size
            self.peak_total = max(self.peak_total, total)
            for name, size in by_kind.items():
                self.peak_by_kind[name] = max(self.peak_by_kind.get(name, 0), size)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


def run_once(records: int, es_url: str, enrich: bool, beam_args: list[str]) -> dict:
    """Back-fill a WARC of ``records`` real pages; return its figures."""
    from backfill import backfill_command, drop_indices
    from elasticsearch import Elasticsearch

    from tests.support.real_pages import write_real_warc

    prefix = f"bench-mem-{uuid.uuid4().hex[:8]}"
    client = Elasticsearch(es_url, request_timeout=60)
    with tempfile.TemporaryDirectory() as tmp:
        warc, profile, summary = (Path(tmp) / name for name in ("in.warc.gz", "p.yaml", "s.json"))
        write_real_warc(warc, SHARED, records, hosts=max(10, records // 50))
        enrich_line = f"enrich: {{enabled: {str(enrich).lower()}}}\n"
        command = backfill_command(warc, profile, summary, es_url, prefix, beam_args, enrich_line)
        started = time.perf_counter()
        proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        sampler = TreeSampler(proc.pid)
        output, _ = proc.communicate()
        wall = time.perf_counter() - started
        sampler.close()
        try:
            if proc.returncode != 0:
                print(output.decode(errors="replace")[-3000:])
            result = json.loads(summary.read_text()) if summary.exists() else {}
            client.indices.refresh(index=prefix, allow_no_indices=True)
            in_index = (
                client.count(index=prefix)["count"] if client.indices.exists(index=prefix) else 0
            )
        finally:
            drop_indices(client, prefix)
    return {
        "records": records,
        "exit": proc.returncode,
        "peak": sampler.peak_total,
        "by_kind": sampler.peak_by_kind,
        "indexed": result.get("indexed", 0),
        "in_index": in_index,
        "seconds": result.get("seconds", wall),
        "wall": wall,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=250, help="records at 1x")
    parser.add_argument("--scales", default="1,4,16")
    parser.add_argument("--no-enrich", action="store_true", help="skip NER (faster)")
    parser.add_argument("--es-url", default="http://127.0.0.1:9200")
    args, beam_args = parser.parse_known_args()
    beam_args = [a for a in beam_args if a != "--"]
    if not SHARED.is_dir():
        print(f"skipped: ../shared not found at {SHARED}")
        return 0
    rows = []
    for scale in (int(s) for s in args.scales.split(",")):
        row = run_once(args.records * scale, args.es_url, not args.no_enrich, beam_args)
        rows.append(row)
        print(json.dumps(row), flush=True)
    base = rows[0]
    mib = 1 << 20
    kinds = sorted({k for row in rows for k in row["by_kind"]})
    print()
    print(
        "| records | exit | indexed | in index | docs/s | peak tree MiB | x 1st | "
        + " | ".join(f"{k} MiB" for k in kinds)
        + " |"
    )
    print("|" + "---|" * (6 + len(kinds) + 1))
    for row in rows:
        rate = row["indexed"] / row["seconds"] if row["seconds"] else 0.0
        print(
            f"| {row['records']} | {row['exit']} | {row['indexed']} | {row['in_index']} | "
            f"{rate:.2f} | {row['peak'] / mib:.0f} | {row['peak'] / base['peak']:.2f} | "
            + " | ".join(f"{row['by_kind'].get(k, 0) / mib:.0f}" for k in kinds)
            + " |"
        )
    return 0 if all(r["exit"] == 0 and r["in_index"] == r["records"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
