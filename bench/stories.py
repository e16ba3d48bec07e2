"""Story clustering and syndicated copies on the labelled development sets.

    python bench/stories.py [--shared ../shared] [--quick]

One run prints, for ECB+ (982 full-text documents, 86 events in twin pairs) and the
UCI News Aggregator sample (6,366 headlines, 87 Google News stories):

- BCubed P/R/F1, pairwise F1 and the number of clusters of our clusterer with the
  defaults (``transforms.story_clustering``), beside two baselines: MinHash copies alone, and
  TF-IDF cosine with average-linkage agglomerative clustering at its best threshold
  *on that very set* (an oracle figure: the baseline is given its best case);
- carry-over: the (threshold, entity weight) best on one set, reported on the other;
- merges across ECB+ twins (two events of the same kind): predicted clusters holding
  documents of both;
- dated: ECB+ with made-up dates (a topic's two events 10 days apart) and verbatim
  copies, as a dated archive is;
- copies: edited verbatim copies of ECB+ documents (a different first and last line,
  as a republisher's header and footer) found, and pairs of different events wrongly
  called copies;
- speed (documents/s of clustering alone, per core) and the pickled state's size
  against the number of open stories.

"wirestream, batch" is how ``wirestream stories`` and the backfill's pass cluster (IDF
over every article first, each article assigned again a window later); "stream" is the
stream's one pass, IDF counted as articles come.

Entities come from the pipeline's own stage (the configured spaCy model), run once per
set before clustering.
"""

from __future__ import annotations

import argparse
import csv
import json
import pickle
import random
import sys
import time
import zlib
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.pages import Enrichment  # noqa: E402
from pipeline.story_pass import story_inputs  # noqa: E402
from transforms.settings import EnrichSettings, StoriesSettings  # noqa: E402
from transforms.story_clustering import StoryInput, cluster, clusterer_of, content_terms  # noqa: E402

THRESHOLDS = [round(0.025 * i, 3) for i in range(3, 15)]
SHORT_THRESHOLDS = [0.015, 0.025, 0.035, 0.05, 0.06, 0.075, 0.09, 0.1, 0.125]
ENTITY_WEIGHTS = [0.0, 0.2, 0.4, 0.6]


# --- data ---------------------------------------------------------------------------


def ecbplus_rows(root: Path, seed: int = 0) -> tuple[list[dict], list[str], list[int]]:
    """Return ECB+ rows (shuffled: no dates, and the file is sorted by event), labels, topics."""
    docs = [json.loads(line) for line in (root / "ecbplus" / "docs.jsonl").open()]
    random.Random(seed).shuffle(docs)
    rows = [
        {"id": d["doc_id"], "body": d["text"], "url": d["url"], "source": d["source_domain"]}
        for d in docs
    ]
    return rows, [d["cluster_id"] for d in docs], [d["topic"] for d in docs]


def uci_rows(root: Path) -> tuple[list[dict], list[str]]:
    """Return the UCI headlines (crawl time as the date) and their Google News story."""
    with (root / "uci-news-titles" / "articles.csv").open(newline="") as handle:
        records = list(csv.DictReader(handle))
    rows = [
        {
            "id": r["ID"],
            "title": r["TITLE"],
            "url": r["URL"],
            "source": r["HOSTNAME"],
            "published_at": int(r["TIMESTAMP"]),
        }
        for r in records
    ]
    return rows, [r["STORY"] for r in records]


# --- scores -------------------------------------------------------------------------


def bcubed(predicted: list[str], gold: list[str]) -> tuple[float, float, float]:
    """Return BCubed precision, recall, F1."""
    pairs = Counter(zip(predicted, gold, strict=True))
    by_pred, by_gold = Counter(predicted), Counter(gold)
    precision = sum(n * n / by_pred[p] for (p, _), n in pairs.items()) / len(gold)
    recall = sum(n * n / by_gold[g] for (_, g), n in pairs.items()) / len(gold)
    return precision, recall, 2 * precision * recall / (precision + recall)


def pairwise_f1(predicted: list[str], gold: list[str]) -> float:
    """Return the F1 of same-cluster pairs."""

    def pairs(counter: Counter) -> int:
        return sum(n * (n - 1) // 2 for n in counter.values())

    both = pairs(Counter(zip(predicted, gold, strict=True)))
    p_pairs, g_pairs = pairs(Counter(predicted)), pairs(Counter(gold))
    precision = both / p_pairs if p_pairs else 1.0
    recall = both / g_pairs if g_pairs else 1.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def twin_merges(predicted: list[str], gold: list[str], topics: list[int]) -> int:
    """Return how many predicted clusters hold documents of both events of one topic."""
    events: dict[str, set[tuple[int, str]]] = defaultdict(set)
    for p, g, t in zip(predicted, gold, topics, strict=True):
        events[p].add((t, g))
    merged = 0
    for members in events.values():
        by_topic = Counter(t for t, _ in members)
        merged += any(n > 1 for n in by_topic.values())
    return merged


def row_of(name: str, predicted: list[str], gold: list[str]) -> str:
    p, r, f = bcubed(predicted, gold)
    return (
        f"| {name} | {p:.3f} | {r:.3f} | **{f:.3f}** | {pairwise_f1(predicted, gold):.3f} "
        f"| {len(set(predicted))} |"
    )


# --- systems ------------------------------------------------------------------------


def ours(
    items: list[StoryInput], settings: StoriesSettings, batch: bool = True, **changes
) -> list[str]:
    """Return our story ids with ``settings`` (fields overridden by ``changes``), as a
    batch pass (``wirestream stories``, the backfill) or as the stream assigns them."""
    clusterer = clusterer_of(settings.model_copy(update=changes), batch=batch)
    return [a.story_id for a in cluster(items, clusterer)]


def minhash_only(items: list[StoryInput], settings: StoriesSettings) -> list[str]:
    """Stories made only of copies: every article its own story unless it copies one."""
    clusterer = clusterer_of(settings.model_copy(update={"threshold": 10.0}), batch=True)
    return [a.copy_group for a in cluster(items, clusterer)]


def agglomerative(items: list[StoryInput], gold: list[str]) -> tuple[float, list[str]]:
    """Return the best distance threshold on this set and its clusters: TF-IDF (sublinear
    tf, same content words as ours) cosine, average linkage."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [" ".join(content_terms(f"{i.title_normalized} {i.body_normalized}")) for i in items]
    matrix = TfidfVectorizer(sublinear_tf=True, token_pattern=r"\S+").fit_transform(texts)
    distances = np.clip(1.0 - (matrix @ matrix.T).toarray(), 0.0, 2.0)
    np.fill_diagonal(distances, 0.0)
    tree = linkage(squareform(distances, checks=False), method="average")
    best = (-1.0, 0.0, [])
    for cut in np.arange(0.05, 1.0, 0.025):
        labels = [str(x) for x in fcluster(tree, cut, criterion="distance")]
        f1 = bcubed(labels, gold)[2]
        if f1 > best[0]:
            best = (f1, float(cut), labels)
    return best[1], best[2]


def best_setting(items, gold, settings, grid: list[dict]) -> tuple[dict, float]:
    """Return the setting of ``grid`` with the best BCubed F1 on one set, and that F1."""
    scored = [(bcubed(ours(items, settings, **g), gold)[2], n, g) for n, g in enumerate(grid)]
    f1, _, chosen = max(scored, key=lambda x: (x[0], -x[1]))
    return chosen, f1


def fold(items, gold, keys, parity: int):
    """Return the items (and labels) whose key's parity is ``parity``: half of a set."""
    kept = [i for i, k in enumerate(keys) if k % 2 == parity]
    return [items[i] for i in kept], [gold[i] for i in kept]


def held_out_table(sets: dict, settings: StoriesSettings) -> None:
    """Two-fold cross-validation: choose on one half of a set, report on the other."""
    full_text = [{"threshold": t, "entity_weight": w} for w in ENTITY_WEIGHTS for t in THRESHOLDS]
    headlines = [{"short_threshold": t} for t in SHORT_THRESHOLDS]
    print(
        "\nHeld out: settings chosen on one half (ECB+ by topic, UCI by story), BCubed F1 "
        "reported on the other half, beside the agglomerative baseline at ITS best cut on "
        "that half (oracle)\n"
    )
    print("| set | chosen on | chosen | F1 there | F1 held out | oracle agglomerative |")
    print("|---|---|---|---|---|---|")
    for name, (items, gold, keys) in sets.items():
        for parity in (0, 1):
            tune_items, tune_gold = fold(items, gold, keys, parity)
            test_items, test_gold = fold(items, gold, keys, 1 - parity)
            # headlines: the short threshold only, at the full-text entity weight
            grid = full_text if name == "ECB+" else headlines
            chosen, f1 = best_setting(tune_items, tune_gold, settings, grid)
            held = bcubed(ours(test_items, settings, **chosen), test_gold)[2]
            _, labels = agglomerative(test_items, test_gold)
            oracle = bcubed(labels, test_gold)[2]
            half = "odd" if parity else "even"
            shown = ", ".join(f"{k} {v}" for k, v in chosen.items())
            print(f"| {name} | {half} half | {shown} | {f1:.3f} | **{held:.3f}** | {oracle:.3f} |")
    items, gold, _ = sets["UCI"]
    single = ours(items, settings, short_threshold=settings.threshold)
    print(
        f"\nOne threshold for both ({settings.threshold}, no short-text rule) on UCI headlines: "
        f"F1 {bcubed(single, gold)[2]:.3f}"
    )


# --- copies -------------------------------------------------------------------------


def edited_copies(items: list[StoryInput], count: int) -> list[StoryInput]:
    """Return copies of the first ``count`` long items, first and last line replaced."""
    copies = []
    for item in items:
        lines = item.body_normalized.split("\n")
        if len(item.body_normalized.split()) < 150 or len(lines) < 4:
            continue
        body = "\n".join(["republished with permission from the wire", *lines[1:-1], "share"])
        copies.append(replace(item, doc_id=f"copy-of-{item.doc_id}", body_normalized=body))
        if len(copies) == count:
            break
    return copies


def copies_table(items: list[StoryInput], gold: list[str], settings: StoriesSettings) -> None:
    """Edited copies found, and documents of different events called copies, per copy
    threshold."""
    copies = edited_copies(items, 200)
    label = dict(zip((i.doc_id for i in items), gold, strict=True))
    print(
        f"\nCopies: {len(copies)} edited copies of ECB+ documents (first and last line "
        "replaced) added to the 982\n\n| copy threshold | edited copies found | in its story "
        "| ECB+ documents called copies | ... of another event |\n|---|---|---|---|---|"
    )
    for threshold in (0.4, 0.5, 0.6, 0.7, 0.8):
        chosen = settings.model_copy(update={"copy_threshold": threshold})
        assigned = cluster(items + copies, clusterer_of(chosen, batch=True))
        by_id = {a.doc_id: a for a in assigned}
        originals = [by_id[c.doc_id.removeprefix("copy-of-")] for c in copies]
        found = sum(
            by_id[c.doc_id].duplicate_of == o.doc_id for c, o in zip(copies, originals, strict=True)
        )
        same_story = sum(
            by_id[c.doc_id].story_id == o.story_id for c, o in zip(copies, originals, strict=True)
        )
        called = [a for a in assigned[: len(items)] if a.duplicate_of]
        wrong = sum(1 for a in called if label[a.duplicate_of] != label[a.doc_id])
        mark = " (default)" if threshold == settings.copy_threshold else ""
        print(
            f"| {threshold}{mark} | {found}/{len(copies)} | {same_story}/{len(copies)} "
            f"| {len(called)} | {wrong} |"
        )


# --- dated, with verbatim copies -----------------------------------------------------


def dated_table(items: list[StoryInput], gold: list[str], settings: StoriesSettings) -> None:
    """ECB+ given dates (each event within 36 hours, a topic's two events 10 days apart,
    topics two days apart, so several events are open at once) and 50 verbatim copies by
    other outlets 1-6 hours after their original: what a dated news archive looks like.
    The dates are made up, and the thresholds were chosen on ECB+: in-sample."""
    rng = random.Random(3)
    base = datetime(2026, 2, 1, tzinfo=timezone.utc)
    dated, labels = [], []
    for item, label in zip(items, gold, strict=True):
        topic, half = label.split("_")
        start = base + timedelta(days=2 * int(topic) + (10 if half == "ecbplus" else 0))
        dated.append(replace(item, time=start + timedelta(hours=rng.uniform(0, 36))))
        labels.append(label)
    for n in rng.sample(range(len(items)), 50):
        original = dated[n]
        later = original.time + timedelta(hours=rng.uniform(1, 6))
        source = f"republisher{n % 5}.example"
        dated.append(replace(original, doc_id=f"{original.doc_id}-copy", time=later, source=source))
        labels.append(labels[n])
    topics = [int(label.split("_")[0]) for label in labels]
    print(
        f"\nDated ECB+ ({len(dated)} documents: made-up dates, twins 10 days apart, 50 "
        "verbatim copies; in-sample thresholds)\n\n| system | BCubed P | BCubed R | BCubed F1 "
        "| pairwise F1 | clusters | twin merges | copies found | copies in their original's "
        "story |\n|---|---|---|---|---|---|---|---|---|"
    )
    for batch in (True, False):
        assigned = cluster(dated, clusterer_of(settings, batch=batch))
        by_id = {a.doc_id: a for a in assigned}
        copies = [a for a in assigned if a.doc_id.endswith("-copy")]
        found = sum(  # its original's group (the original may itself copy an older one)
            a.duplicate_of is not None
            and a.copy_group == by_id[a.doc_id.removesuffix("-copy")].copy_group
            for a in copies
        )
        joined = sum(a.story_id == by_id[a.doc_id.removesuffix("-copy")].story_id for a in copies)
        predicted = [a.story_id for a in assigned]
        name = "wirestream, batch" if batch else "wirestream, stream: one pass"
        print(
            f"{row_of(name, predicted, labels)} {twin_merges(predicted, labels, topics)} "
            f"| {found}/{len(copies)} | {joined}/{len(copies)} |"
        )
    cut, agglomerated = agglomerative(dated, labels)
    name = f"TF-IDF + average linkage (no dates), best cut {cut:.3f} (oracle)"
    print(f"{row_of(name, agglomerated, labels)} {twin_merges(agglomerated, labels, topics)} | | |")


# --- speed and memory ----------------------------------------------------------------


def speed_and_memory(items: list[StoryInput], settings: StoriesSettings) -> None:
    """Stream speed, and the pickled state of the stream's and a batch pass's clusterer
    against the open stories (a batch pass also keeps the last window's vectors)."""
    ordered = sorted(items, key=lambda i: i.time.timestamp() if i.time else 0)
    stream, batch = clusterer_of(settings), clusterer_of(settings, batch=True)
    batch.warm(ordered)
    elapsed, marks = 0.0, []
    for n, item in enumerate(ordered, 1):
        start = time.process_time()
        stream.assign(item)
        elapsed += time.process_time() - start
        batch.assign(item)
        if n % 1000 == 0 or n == len(items):
            sizes = (len(pickle.dumps(stream)), len(pickle.dumps(batch)))
            marks.append((n, stream.open_stories(), batch.open_stories(), *sizes))
    print(
        f"\nSpeed (UCI headlines, stream): {len(items) / elapsed:,.0f} documents/s on one core"
        "\n\n| documents | open stories (stream) | state (stream) | open stories (batch) "
        "| state (batch) |\n|---|---|---|---|---|"
    )
    for n, stories, batch_stories, size, batch_size in marks:
        print(
            f"| {n:,} | {stories:,} | {size / 1e6:.2f} MB | {batch_stories:,} "
            f"| {batch_size / 1e6:.2f} MB |"
        )


def speed_full_text(items: list[StoryInput], settings: StoriesSettings) -> None:
    for batch in (False, True):
        start = time.process_time()
        cluster(items, clusterer_of(settings, batch=batch))
        elapsed = time.process_time() - start
        mode = "batch" if batch else "stream"
        print(
            f"Speed (ECB+ full text, {mode}): {len(items) / elapsed:,.0f} documents/s on one core"
        )


# --- main ---------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    parser.add_argument("--no-entities", action="store_true", help="skip the entity stage")
    parser.add_argument(
        "--features", help="pickle of the sets' features: read if present, else written"
    )
    args = parser.parse_args()
    root = Path(args.shared) / "bench" / "stories-dev"
    if not root.is_dir():
        sys.exit(f"{root}: not found (the development sets live in ../shared)")
    settings = StoriesSettings()
    enrichment = None if args.no_entities else Enrichment(EnrichSettings())

    started = time.monotonic()
    ecb_rows, ecb_gold, topics = ecbplus_rows(root)
    uci_rows_, uci_gold = uci_rows(root)
    cache = Path(args.features) if args.features else None
    if cache and cache.exists():
        ecb, uci = pickle.loads(cache.read_bytes())
    else:
        ecb = story_inputs(ecb_rows, enrichment)
        uci = story_inputs(uci_rows_, enrichment)
        if cache:
            cache.write_bytes(pickle.dumps((ecb, uci)))
    print(f"features (normaliser + entities) in {time.monotonic() - started:.0f} s")

    sets = {"ECB+": (ecb, ecb_gold), "UCI": (uci, uci_gold)}
    print(
        f"\nDefaults (chosen on these sets, so the rows below are in-sample; the held-out "
        f"table is the result): threshold {settings.threshold} (short bodies "
        f"{settings.short_threshold}), entity weight {settings.entity_weight}, window "
        f"{settings.window_hours:g} h, copy threshold {settings.copy_threshold}"
    )
    for name, (items, gold) in sets.items():
        print(f"\n### {name}: {len(items)} documents, {len(set(gold))} stories\n")
        print("| system | BCubed P | BCubed R | BCubed F1 | pairwise F1 | clusters |")
        print("|---|---|---|---|---|---|")
        predicted = ours(items, settings)
        print(row_of("wirestream, batch (defaults)", predicted, gold))
        print(row_of("wirestream, stream: one pass", ours(items, settings, batch=False), gold))
        print(row_of("MinHash copies alone", minhash_only(items, settings), gold))
        cut, labels = agglomerative(items, gold)
        print(row_of(f"TF-IDF + average linkage, best cut {cut:.3f} (oracle)", labels, gold))
        if name == "ECB+":
            print(
                f"\nclusters mixing the two events of one topic: ours "
                f"{twin_merges(predicted, gold, topics)}, agglomerative "
                f"{twin_merges(labels, gold, topics)}"
            )

    ecb_keys = topics
    uci_keys = [zlib.crc32(g.encode()) for g in uci_gold]
    held_out_table({"ECB+": (ecb, ecb_gold, ecb_keys), "UCI": (uci, uci_gold, uci_keys)}, settings)

    copies_table(ecb, ecb_gold, settings)
    dated_table(ecb, ecb_gold, settings)
    speed_and_memory(uci, settings)
    speed_full_text(ecb, settings)


if __name__ == "__main__":
    main()
