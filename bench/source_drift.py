"""False alarms and detection delays of the source drift flags (``transforms/source_health``).

    python bench/source_drift.py [--pages 20000] [--seeds 3]

A simulated source publishes pages whose body lengths are drawn from a real set's bodies
(each set mixes dozens of publishers: a harder case than one source; the last row
squeezes one set's lengths to one publisher's spread), 80% with authors
and 95% with a date; then it breaks: authors vanish, bodies halve or shrink to a third,
pages stop yielding a body, or walls appear. Printed per set: flags raised on the healthy
pages (false alarms per 10,000 pages) and how many broken pages each break took to be
flagged. The thresholds were chosen on ``article-extraction`` (88 pages) and are reported
on the fundus sets (123 pages in 14 languages) as well.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.extraction import SHARED  # noqa: E402
from transforms.source_health import SourceState, tally  # noqa: E402

BENCH = SHARED / "bench"


def body_lengths() -> dict[str, list[int]]:
    """Word counts of the human-checked bodies, per set."""
    truth = json.loads((BENCH / "article-extraction" / "ground-truth.json").read_text("utf-8"))
    sets = {
        "article-extraction (chosen on)": [len(r["articleBody"].split()) for r in truth.values()]
    }
    fundus = []
    for folder in ("fundus-dev", "fundus-multilingual-dev"):
        for line in (BENCH / folder / "manifest.jsonl").read_text("utf-8").splitlines():
            body = json.loads(line)["body"]
            fundus.append(len((body if isinstance(body, str) else " ".join(body)).split()))
    sets["fundus sets (reported on)"] = fundus
    # one publisher's pages vary less than dozens of publishers': the fundus lengths
    # squeezed to a log2 deviation of 0.5 around their median
    logs = [math.log2(max(n, 1)) for n in fundus]
    middle, spread = statistics.median(logs), statistics.pstdev(logs)
    squeezed = [round(2 ** (middle + (x - middle) * 0.5 / spread)) for x in logs]
    sets["one publisher (fundus, log2 sd 0.5)"] = squeezed
    return sets


def page(rng: random.Random, lengths: list[int], author=0.8, factor=1.0) -> tuple[str, dict]:
    words = max(1, int(rng.choice(lengths) / factor))
    summary = {
        "author": rng.random() < author,
        "date": rng.random() < 0.95,
        "title": True,
        "words": words,
        "extractor": "trafilatura",
        "language": "en",
    }
    return ("article", summary)


BREAKS = {
    "authors vanish": lambda rng, lengths: page(rng, lengths, author=0.0),
    "bodies halve": lambda rng, lengths: page(rng, lengths, factor=2),
    "bodies a third": lambda rng, lengths: page(rng, lengths, factor=3),
    "no body": lambda rng, lengths: ("failure", "extract:too_little_text"),
    "walls": lambda rng, lengths: ("failure", "fetch:bot_wall"),
}


def run(lengths: list[int], pages: int, seed: int, broken) -> tuple[int, int | None]:
    """Return (false alarms on ``pages`` healthy pages, broken pages until flagged)."""
    rng, state, now = random.Random(seed), SourceState(), 1.8e9
    alarms = 0
    for n in range(pages):
        alarms += len(tally(state, page(rng, lengths), now + n)[0])
    for n in range(100):
        if tally(state, broken(rng, lengths), now + pages + n)[0]:
            return alarms, n + 1
    return alarms, None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    for name, lengths in body_lengths().items():
        print(f"{name}: {len(lengths)} bodies")
        for label, broken in BREAKS.items():
            results = [run(lengths, args.pages, s, broken) for s in range(args.seeds)]
            alarms = sum(a for a, _ in results) / (args.pages * args.seeds) * 10_000
            delays = ", ".join(str(d) if d else "not flagged" for _, d in results)
            print(
                f"  {label:15} false alarms {alarms:5.2f} per 10,000 pages; flagged after {delays}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
