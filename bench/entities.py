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

Quality is printed in the same run (``bench/entity_quality.py`` says how it is scored):
precision/recall/F1 of raw spaCy and of our stage on the GUM news gold mentions, overall
and on each half of its documents; then, on the development pages, distinct values per
type for raw spaCy and for our stage, values that look like numbers, dates or scores, and
how many values name one country.

    python bench/entities.py [--runner prism|fnapi] [--repeat 3] [--batch-size 16]
    python bench/entities.py --quality   # quality only (no speed runs)
    python bench/entities.py --report    # per-type values on the seeds
    python bench/entities.py --junk      # suspicious raw values on the development pages
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

from bench import entity_quality as eq  # noqa: E402
from pipeline.config import EnrichSettings  # noqa: E402
from transforms.article import Article  # noqa: E402
from transforms.enrich import TagEntities, entities_of, load_model, tag_entities  # noqa: E402
from transforms.entity_values import ENTITY_FIELDS, ENTITY_TYPES, load_aliases  # noqa: E402
from transforms.gazetteer import Gazetteer, load_gazetteer  # noqa: E402
from transforms.geocode import geocode_article  # noqa: E402
from transforms.normalize import normalize_title  # noqa: E402

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
    nlp = load_model(settings.models["en"])
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
    """Print entities per type on the seeds."""
    settings = EnrichSettings()
    nlp = load_model(settings.models["en"])
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


def print_quality(nlp, gazetteer: Gazetteer) -> None:
    """Print P/R/F1 of raw spaCy and our stage on GUM, overall, per type and per half."""
    docs = eq.gold_docs(SHARED)
    parsed = list(nlp.pipe([d.text for d in docs], batch_size=8))
    halves = {"all": range(len(docs)), "half A": range(0, len(docs), 2)}
    halves["half B"] = range(1, len(docs), 2)
    total = sum(sum(sum(c.values()) for c in d.gold) for d in docs)
    print(f"\nGUM news gold: {len(docs)} documents, {total} proper-name mentions")
    print("| set | system | " + " | ".join(f"{t} P/R/F1" for t in eq.TYPES) + " | all P/R/F1 |")
    print("|---|---|" + "---|" * (len(eq.TYPES) + 1))
    for name, ids in halves.items():
        systems = {
            "raw spaCy": [eq.raw_mentions(parsed[i], docs[i]) for i in ids],
            "our stage": [eq.stage_mentions(parsed[i], docs[i], gazetteer) for i in ids],
        }
        for system, predicted in systems.items():
            sc = eq.score(zip((docs[i].gold for i in ids), predicted, strict=True))
            cells = [sc.prf(kind) for kind in (*eq.TYPES, None)]
            row = " | ".join(f"{p:.3f}/{r:.3f}/{f:.3f}" for p, r, f in cells)
            print(f"| {name} | {system} | {row} |")


def print_values(nlp, gazetteer: Gazetteer) -> None:
    """Print distinct values per type (raw vs ours), junk values and values per country."""
    texts = eq.dev_texts(SHARED)
    aliases = load_aliases()
    articles = [as_article(str(i), text) for i, text in enumerate(texts)]
    # One NER pass over the text the stage tags: raw values and ours from the same doc.
    tagged = (f"{a.title}\n\n{a.body}" for a in articles)
    raw: dict[str, set[str]] = {}
    ours: dict[str, set[str]] = {}
    for article, doc in zip(articles, nlp.pipe(tagged, batch_size=16), strict=True):
        for ent in doc.ents:
            if ent.label_ in ENTITY_FIELDS:
                raw.setdefault(ENTITY_FIELDS[ent.label_], set()).add(normalize_title(ent.text))
        entities, counts = entities_of(doc, aliases)
        enriched = article.replace(entities=entities, entity_counts=counts)
        for kind, values in geocode_article(gazetteer, enriched).entities.items():
            ours.setdefault(kind, set()).update(values)

    def per_country(values: set[str]) -> str:
        by_country: dict[str, set[str]] = {}
        for value in values:
            found = gazetteer.lookup(value)
            if found and found[0].kind == "country":
                by_country.setdefault(found[0].country, set()).add(value)
        n = sum(len(v) for v in by_country.values())
        return f"{n / len(by_country):.2f} ({n} values, {len(by_country)} countries)"

    print(f"\nDevelopment pages: {len(texts)} (article-extraction + fundus-dev)")
    print("| type | raw spaCy values | our values | raw not-a-name | ours not-a-name |")
    print("|---|---|---|---|---|")
    for kind in ENTITY_TYPES:
        r, o = raw.get(kind, set()), ours.get(kind, set())
        junk_r, junk_o = sum(map(eq.not_a_name, r)), sum(map(eq.not_a_name, o))
        print(f"| {kind} | {len(r)} | {len(o)} | {junk_r} | {junk_o} |")
    print(f"places per country: raw {per_country(raw.get('places', set()))}, "
          f"ours {per_country(ours.get('places', set()))}")  # fmt: skip


def print_junk(nlp) -> None:
    """Print the raw values on the development pages that look like no name."""
    for doc in nlp.pipe(eq.dev_texts(SHARED), batch_size=16):
        for ent in doc.ents:
            value = normalize_title(ent.text)
            if ent.label_ in ENTITY_FIELDS and (eq.not_a_name(value) or ent.text.islower()):
                print(f"{ENTITY_FIELDS[ent.label_]}\t{ent.text!r}")


def quality() -> None:
    """Print the quality tables (GUM gold, development pages)."""
    settings = EnrichSettings()
    nlp = load_model(settings.models["en"])
    gazetteer = load_gazetteer(settings.gazetteer_path, settings.gazetteer_min_population)
    print_quality(nlp, gazetteer)
    print_values(nlp, gazetteer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runner", choices=["prism", "fnapi"], default="prism")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--report", action="store_true", help="values on the seeds instead")
    parser.add_argument("--quality", action="store_true", help="quality tables only")
    parser.add_argument("--junk", action="store_true", help="suspicious raw values")
    args = parser.parse_args()
    if args.report:
        report()
    elif args.junk:
        print_junk(load_model(EnrichSettings().spacy_model))
    elif args.quality:
        quality()
    else:
        bench(args.runner, args.repeat, args.batch_size)
        quality()


if __name__ == "__main__":
    main()
