"""Entity stage speed: words/s of ``TagEntities`` inside a Beam pipeline vs raw ``nlp.pipe``.

Both run in this process on the same texts (the 3 seeds, the article-extraction ground
truth bodies, the GUM news raw text), with the same model already loaded, in the same
run. The Beam pipeline runs on Prism in batch mode with the LOOPBACK environment, so
the SDK worker is this process; ``--runner fnapi`` uses Beam's in-process FnApiRunner.

The stage's time is measured twice: *differential* (wall time of Create -> TagEntities
-> Count minus that of Create -> Count, so runner start-up and Create are not charged to
the stage, but everything the stage adds - buffering, batching, encoding - is) and
*in-stage* (the ``enrich_batch_ms`` distribution: time inside the DoFn's batches).
Both are also taken as CPU time of this process (the SDK worker), which other jobs on a
shared machine disturb far less than wall time. Each figure is the best of ``--repeat``
runs, raw and Beam interleaved. Geocoding is off: this measures NER.

    python bench/entities.py [--runner prism|fnapi] [--repeat 3] [--batch-size 16]
    python bench/entities.py --report    # per-type counts on the seeds, quality per type
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import apache_beam as beam  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402

from pipeline.config import EnrichSettings  # noqa: E402
from transforms.article import Article  # noqa: E402
from transforms.enrich import ENTITY_TYPES, TagEntities, load_model, tag_entities  # noqa: E402
from transforms.gazetteer import load_gazetteer  # noqa: E402
from transforms.geocode import geocode_article  # noqa: E402

SHARED = ROOT.parent / "shared"


def bench_texts(shared: Path = SHARED) -> list[tuple[str, str]]:
    """Return (name, text) for the seeds, ground-truth bodies and GUM news raw text."""
    texts = [(p.name, p.read_text()) for p in sorted((shared / "seeds").glob("*.txt"))]
    truth = json.loads((shared / "bench/article-extraction/ground-truth.json").read_text())
    texts += [(key, item["articleBody"]) for key, item in sorted(truth.items())]
    raw = sorted((shared / "fixtures/tokeniser/gum-news/raw").glob("*.txt"))
    texts += [(p.name, p.read_text()) for p in raw]
    return texts


def as_article(name: str, text: str) -> Article:
    """Return an unenriched article whose body is ``text``."""
    return Article(
        url=name, canonical_url=name, source="bench", feed_url=None, title="", body=text,
        fetched_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
    )  # fmt: skip


def time_raw(nlp, texts: list[str], batch_size: int) -> tuple[float, float]:
    """Return the (wall, CPU) seconds ``nlp.pipe`` takes over ``texts``."""
    started, cpu = time.perf_counter(), time.process_time()
    for _ in nlp.pipe(texts, batch_size=batch_size):
        pass
    return time.perf_counter() - started, time.process_time() - cpu


def run_pipeline(
    articles: list[Article], beam_args: list[str], stage
) -> tuple[float, float, float]:
    """Return (wall, CPU of this process, inside the stage's batches) seconds of a pipeline.

    The pipeline is Create -> ``stage`` -> Count. With LOOPBACK (and FnApiRunner) the
    SDK worker is this process, so its CPU time is the Python side of the run.
    """
    pipeline = beam.Pipeline(options=PipelineOptions(beam_args))
    _ = (
        pipeline
        | beam.Create(articles, reshuffle=False)
        | stage
        | beam.combiners.Count.Globally()
    )  # fmt: skip
    started, cpu = time.perf_counter(), time.process_time()
    result = pipeline.run()
    result.wait_until_finish()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    dists = result.metrics().query()["distributions"]
    inside = sum(d.committed.sum for d in dists if d.key.metric.name == "enrich_batch_ms")
    return wall, cpu, inside / 1000


def runner_args(runner: str) -> list[str]:
    """Return the Beam arguments for ``runner`` (prism: batch mode, LOOPBACK)."""
    if runner == "fnapi":
        return ["--runner=FnApiRunner"]
    from pipeline.services.runners import prism_args

    return prism_args(streaming=False)


def bench(runner: str, repeat: int, batch_size: int) -> None:
    """Print words/s of raw ``nlp.pipe`` and of the Beam stage, and their ratio."""
    settings = EnrichSettings(batch_size=batch_size, geocode=False)
    articles = [as_article(name, text) for name, text in bench_texts()]
    texts = [f"{a.title}\n\n{a.body}"[: settings.max_chars] for a in articles]
    words = sum(len(text.split()) for text in texts)
    nlp = load_model(settings.spacy_model)
    list(nlp.pipe(texts[:8], batch_size=batch_size))  # warm up
    args = runner_args(runner)
    times: dict[str, list[float]] = {}
    for _ in range(repeat):
        raw_wall, raw_cpu = time_raw(nlp, texts, batch_size)
        wall, cpu, inside = run_pipeline(articles, args, TagEntities(settings))
        base_wall, base_cpu, _ = run_pipeline(articles, args, beam.Map(lambda a: a))
        run = {
            "raw wall": raw_wall, "stage wall (differential)": wall - base_wall,
            "stage wall (in-stage)": inside,
            "raw CPU": raw_cpu, "stage CPU (differential)": cpu - base_cpu,
        }  # fmt: skip
        for name, seconds in run.items():
            times.setdefault(name, []).append(seconds)
        print("  run: " + ", ".join(f"{k} {v:.2f}s" for k, v in run.items()), flush=True)
    rates = {name: words / min(seconds) for name, seconds in times.items()}
    print(f"texts: {len(texts)}, words: {words:,}, batch size {batch_size}, runner {runner}")
    for name, rate in rates.items():
        base = rates["raw CPU" if "CPU" in name else "raw wall"]
        print(f"{name:27} {rate:9,.0f} words/s  ratio {rate / base:.2f}x")


def report() -> None:
    """Print entities per type on the seeds, and quality per type on the hand-checked set."""
    settings = EnrichSettings()
    nlp = load_model(settings.spacy_model)
    gazetteer = load_gazetteer(settings.gazetteer_path, settings.gazetteer_min_population)
    seeds = [as_article(p.name, p.read_text()) for p in sorted((SHARED / "seeds").glob("*.txt"))]
    print("| seed | words | " + " | ".join(ENTITY_TYPES) + " |")
    print("|---|---|" + "---|" * len(ENTITY_TYPES))
    for article in tag_entities(nlp, seeds, settings.max_chars):
        distinct = [len(article.entities.get(t, [])) for t in ENTITY_TYPES]
        mentions = [sum(article.entity_counts.get(t, {}).values()) for t in ENTITY_TYPES]
        cells = " | ".join(f"{d} ({m})" for d, m in zip(distinct, mentions, strict=True))
        print(f"| {article.url} | {len(article.body.split())} | {cells} |")
        for kind in ENTITY_TYPES:
            print(f"|  | {kind} | {', '.join(article.entities.get(kind, []))} |")
        located = geocode_article(gazetteer, article)
        points = len(located.locations)
        print(f"|  | countries | {', '.join(located.countries)} ({points} points) |")

    from tests.test_enrich import CORE_TYPES, quality_counts

    found, gold_n, got_n = quality_counts(nlp, SHARED)
    print("\n| type | expected | found | predicted | recall | precision |")
    print("|---|---|---|---|---|---|")
    for kind in (*CORE_TYPES, "all"):
        f, g, p = (
            (sum(c.values()) for c in (found, gold_n, got_n))
            if kind == "all"
            else (found[kind], gold_n[kind], got_n[kind])
        )
        print(f"| {kind} | {g} | {f} | {p} | {f / g:.2f} | {f / p:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runner", choices=["prism", "fnapi"], default="prism")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--report", action="store_true", help="seed counts and quality instead")
    args = parser.parse_args()
    if args.report:
        report()
    else:
        bench(args.runner, args.repeat, args.batch_size)


if __name__ == "__main__":
    main()
