"""Article-body extraction quality: ours vs newspaper3k, newspaper4k and trafilatura.

Scores every extractor on the same decoded pages in one run:

* ``../shared/bench/article-extraction`` (88 pages, human-checked bodies): precision,
  recall and F1 over 4-token shingles of ``\\w+`` tokens, as that benchmark defines
  them (per-page P and R averaged, F1 from the averages), plus pages/second;
* ``../shared/fixtures/articles/trafilatura-en-news`` (42 pages): the share of
  "must contain" snippets found and of "must not contain" snippets kept out.

    python bench/extraction.py [--newspaper3k PATH] [--json results.json]

newspaper3k and newspaper4k are both the ``newspaper`` package, so newspaper3k runs in
a child process with its own install first on ``PYTHONPATH``:
``pip install --no-deps --target PATH newspaper3k==0.2.8 jieba3k tinysegmenter
feedfinder2 cssselect`` (default PATH: ``$WIRESTREAM_CACHE/newspaper3k``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("WIRESTREAM_SHARED", REPO.parent / "shared"))
BENCH = SHARED / "bench" / "article-extraction"
SNIPPETS = SHARED / "fixtures" / "articles" / "trafilatura-en-news"
sys.path.insert(0, str(REPO))

Extractor = Callable[[str, str], str]


# ----------------------------------------------------------------------------- scoring
def shingles(text: str, size: int = 4) -> Counter:
    """Return the multiset of ``size``-token windows of ``\\w+`` tokens in ``text``."""
    tokens = re.findall(r"\w+", text or "")
    return Counter(tuple(tokens[i : i + size]) for i in range(len(tokens) - size + 1))


def page_scores(predicted: str, truth: str) -> tuple[float, float]:
    """Return (precision, recall) of ``predicted`` against ``truth`` (benchmark's rules)."""
    got, want = shingles(predicted), shingles(truth)
    shared = sum((got & want).values())
    precision = shared / sum(got.values()) if got else float(not want)
    recall = shared / sum(want.values()) if want else 1.0
    return precision, recall


def summarize(scores: list[tuple[float, float]]) -> dict[str, float]:
    """Return averaged precision and recall, and F1 computed from the averages."""
    precision = statistics.fmean(p for p, _ in scores)
    recall = statistics.fmean(r for _, r in scores)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def snippet_scores(texts: dict[str, str], cases: dict[str, dict]) -> dict[str, float]:
    """Return the share of wanted snippets found, unwanted kept out, and clean pages."""
    found = wanted = kept_out = unwanted = clean = 0
    for name, case in cases.items():
        text = texts.get(name, "")
        hits = sum(s in text for s in case.get("with", []))
        misses = sum(s not in text for s in case.get("without", []))
        found, wanted = found + hits, wanted + len(case.get("with", []))
        kept_out, unwanted = kept_out + misses, unwanted + len(case.get("without", []))
        clean += hits == len(case.get("with", [])) and misses == len(case.get("without", []))
    return {
        "with": found / wanted,
        "without": kept_out / unwanted,
        "pages_all_right": clean / len(cases),
    }


# ----------------------------------------------------------------------------- pages
def load_pages() -> tuple[list[dict], dict[str, dict]]:
    """Return the scored pages (id, url, html, truth) and the snippet cases by page id."""
    from pipeline.pages import read_page
    from transforms.fetch import decode_html

    truth = json.loads((BENCH / "ground-truth.json").read_text(encoding="utf-8"))
    pages = [
        {
            "id": pid,
            "url": rec["url"],
            "truth": rec["articleBody"],
            "html": decode_html(read_page(str(BENCH / "html" / f"{pid}.html.gz"))),
        }
        for pid, rec in truth.items()
    ]
    evaldata = json.loads((SNIPPETS / "evaldata-en-news.json").read_text(encoding="utf-8"))
    cases = {}
    for url, case in evaldata.items():
        pid = "snippets/" + case["file"]
        html = decode_html((SNIPPETS / "html" / case["file"]).read_bytes())
        pages.append({"id": pid, "url": url, "truth": None, "html": html})
        cases[pid] = case
    return pages, cases


# ----------------------------------------------------------------------------- extractors
def ours(html: str, url: str) -> str:
    from transforms.extract import ExtractError, extract_article

    try:
        return extract_article(html, url, min_chars=0).body
    except ExtractError:
        return ""


def newspaper4k(html: str, url: str) -> str:
    from transforms.extract import with_newspaper

    return with_newspaper(html, url).text


def trafilatura_precision(html: str, url: str) -> str:
    from transforms.extract import with_trafilatura

    return with_trafilatura(html, url).text


def trafilatura_default(html: str, url: str) -> str:
    import trafilatura

    return trafilatura.extract(html, url=url, include_comments=False) or ""


def newspaper3k(html: str, url: str) -> str:
    """newspaper3k 0.2.8 as its README shows it, images off (only in the child process)."""
    from newspaper import Article, Config

    config = Config()
    config.fetch_images = False
    config.memoize_articles = False
    article = Article(url, config=config)
    try:
        article.download(input_html=html)
        article.parse()
    except Exception:
        return ""
    return article.text or ""


def run_extractor(extract: Extractor, pages: list[dict]) -> tuple[dict[str, str], list[float]]:
    """Return each page's body and the seconds each page took."""
    texts, seconds = {}, []
    for page in pages:
        started = time.perf_counter()
        texts[page["id"]] = extract(page["html"], page["url"])
        seconds.append(time.perf_counter() - started)
    return texts, seconds


def run_newspaper3k(path: Path, pages: list[dict]) -> tuple[dict[str, str], list[float]] | str:
    """Run newspaper3k in a child process from ``path``; return its results or why not."""
    if not (path / "newspaper" / "__init__.py").is_file():
        return f"not installed at {path}"
    env = {**os.environ, "PYTHONPATH": str(path)}
    payload = json.dumps([{k: p[k] for k in ("id", "url", "html")} for p in pages])
    proc = subprocess.run(
        [sys.executable, __file__, "--child-newspaper3k"],
        input=payload,
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        return f"failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr else proc.returncode}"
    result = json.loads(proc.stdout)
    return result["texts"], result["seconds"]


def child_newspaper3k() -> int:
    import newspaper

    if not newspaper.__version__.startswith("0.2"):
        raise SystemExit(
            f"expected newspaper3k 0.2.x first on the path, got {newspaper.__version__}"
        )
    texts, seconds = run_extractor(newspaper3k, json.load(sys.stdin))
    json.dump({"texts": texts, "seconds": seconds}, sys.stdout)
    return 0


# ----------------------------------------------------------------------------- report
def score(name: str, texts: dict[str, str], seconds: list[float], pages, cases) -> dict:
    """Return one extractor's row: benchmark P/R/F1, snippet scores, speed."""
    bench = [p for p in pages if p["truth"] is not None]
    row = {"extractor": name}
    row |= summarize([page_scores(texts[p["id"]], p["truth"]) for p in bench])
    row |= {f"snippets_{k}": v for k, v in snippet_scores(texts, cases).items()}
    row["pages_per_second"] = len(seconds) / sum(seconds)
    row["ms_median"] = 1000 * statistics.median(seconds)
    return row


def table(rows: list[dict], skipped: dict[str, str]) -> str:
    """Return the results as a Markdown table."""
    lines = [
        "| extractor | F1 | P | R | snippets found | boilerplate kept out | pages fully right "
        "| pages/s | ms/page (median) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['extractor']} | {r['f1']:.3f} | {r['precision']:.3f} | {r['recall']:.3f} "
            f"| {r['snippets_with']:.3f} | {r['snippets_without']:.3f} "
            f"| {r['snippets_pages_all_right']:.3f} | {r['pages_per_second']:.1f} "
            f"| {r['ms_median']:.0f} |"
        )
    lines += [f"| {name} | not run: {why} | | | | | | | |" for name, why in skipped.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--newspaper3k", type=Path, help="newspaper3k install (pip --target)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--child-newspaper3k", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    logging.disable(logging.CRITICAL)  # extractors log every odd page
    if args.child_newspaper3k:
        return child_newspaper3k()

    from transforms.paths import cache_dir

    pages, cases = load_pages()
    print(
        f"{sum(p['truth'] is not None for p in pages)} benchmark pages, {len(cases)} snippet pages"
    )
    extractors: dict[str, Extractor] = {
        "wirestream (newspaper4k + trafilatura fallback)": ours,
        "newspaper4k 0.9.6": newspaper4k,
        "trafilatura 2.3.1 favor_precision, no comments": trafilatura_precision,
        "trafilatura 2.3.1 default, no comments": trafilatura_default,
    }
    rows, skipped = [], {}
    for name, extract in extractors.items():
        texts, seconds = run_extractor(extract, pages)
        rows.append(score(name, texts, seconds, pages, cases))
    result = run_newspaper3k(args.newspaper3k or cache_dir() / "newspaper3k", pages)
    if isinstance(result, str):
        skipped["newspaper3k 0.2.8"] = result
    else:
        rows.append(score("newspaper3k 0.2.8", *result, pages, cases))
    print(table(rows, skipped))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
