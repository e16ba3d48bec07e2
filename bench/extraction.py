"""Article extraction quality and cost: ours against every open extractor, on three sets.

Scores every extractor on the same decoded pages in one run:

* ``aeb``: ``../shared/bench/article-extraction`` (88 pages, human-checked bodies): body
  precision, recall and F1 over 4-token shingles of ``\\w+`` tokens, as that benchmark
  defines them (per-page P and R averaged, F1 from the averages);
* ``fundus``: ``../shared/bench/fundus-dev`` (41 pages of 28 publishers, exact body,
  title, authors and date): body P/R/F1 as above; title equal after lowercasing and
  collapsing non-word runs; authors the same, as sets; date the same UTC day;
* ``snippets``: ``../shared/fixtures/articles/trafilatura-en-news`` (42 pages): the share
  of "must contain" snippets found and of "must not contain" snippets kept out, plus
  title, authors (the truth string split at commas and "and") and date where given;
* cost: milliseconds of CPU per page over all 171 pages (median, p95, mean and the worst
  page, one process); "body only" is trafilatura without its metadata pass, the body's
  floor.

Then, for each choice the extraction makes (trafilatura's mode, the title source), the
option chosen on one set is reported on the other, so no figure is tuned on the pages it
is reported on.

    python bench/extraction.py [--newspaper3k PATH] [--json results.json]

newspaper3k and newspaper4k are both the ``newspaper`` package, so newspaper3k runs in
a child process with its own install first on ``PYTHONPATH``:
``pip install --no-deps --target PATH newspaper3k==0.2.8 jieba3k tinysegmenter
feedfinder2 cssselect`` (default PATH: ``$WIRESTREAM_CACHE/newspaper3k``).
readability-lxml is in the ``bench`` extra (``pip install -e .[bench]``).
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
FUNDUS = SHARED / "bench" / "fundus-dev"


def load_pages() -> tuple[list[dict], dict[str, dict]]:
    """Return the pages (set, id, url, html and whatever truth the set has) and the
    snippet cases by page id."""
    import gzip

    from pipeline.pages import read_page
    from transforms.fetch import decode_html

    truth = json.loads((BENCH / "ground-truth.json").read_text(encoding="utf-8"))
    pages = [
        {
            "set": "aeb",
            "id": pid,
            "url": rec["url"],
            "body": rec["articleBody"],
            "html": decode_html(read_page(str(BENCH / "html" / f"{pid}.html.gz"))),
        }
        for pid, rec in truth.items()
    ]
    for line in (FUNDUS / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        pages.append(
            {
                "set": "fundus",
                "id": "fundus/" + row["file"],
                "url": row["url"],
                "body": row["body"],
                "title": row["title"],
                "authors": row["authors"],
                "date": row["publishing_date"],
                "html": decode_html(gzip.decompress((FUNDUS / row["file"]).read_bytes())),
            }
        )
    evaldata = json.loads((SNIPPETS / "evaldata-en-news.json").read_text(encoding="utf-8"))
    cases = {}
    for url, case in evaldata.items():
        pid = "snippets/" + case["file"]
        page = {"set": "snippets", "id": pid, "url": url, "body": None}
        page["html"] = decode_html((SNIPPETS / "html" / case["file"]).read_bytes())
        if "title" in case:
            page["title"] = case["title"]
            page["authors"] = [a for a in re.split(r",\s*|\s+and\s+", case["author"]) if a]
            page["date"] = case["date"]
        pages.append(page)
        cases[pid] = case
    return pages, cases


# ----------------------------------------------------------------------------- extractors
def _record(body="", title="", authors=None, date=None) -> dict:
    return {
        "body": body or "",
        "title": title or "",
        "authors": list(authors or []),
        "date": date.isoformat() if hasattr(date, "isoformat") else (date or None),
    }


def ours(backend: str = "trafilatura") -> Extractor:
    def extract(html: str, url: str) -> dict:
        from transforms.extract import ExtractError, extract_article

        try:
            a = extract_article(html, url, min_chars=0, backend=backend)  # type: ignore[arg-type]
        except ExtractError:
            return _record()
        return _record(a.body, a.title, a.authors, a.published_at)

    return extract


def newspaper4k(html: str, url: str) -> dict:
    from transforms.extract import with_newspaper

    e = with_newspaper(html, url)
    return _record(e.text, e.title, e.authors, e.published_at)


def trafilatura_mode(with_metadata: bool = True, **options) -> Extractor:
    def extract(html: str, url: str) -> dict:
        import trafilatura

        try:
            doc = trafilatura.bare_extraction(
                html, url=url, include_comments=False, with_metadata=with_metadata, **options
            )
        except Exception:
            doc = None
        if doc is None:
            return _record()
        authors = [a.strip() for a in (doc.author or "").split(";") if a.strip()]
        return _record(doc.text, doc.title, authors, doc.date)

    return extract


def readability(html: str, url: str) -> dict:
    from lxml import html as lxml_html
    from readability import Document

    try:
        doc = Document(html, url=url)
        summary = doc.summary(html_partial=True)
        tree = lxml_html.fromstring(summary)
        paragraphs = [
            " ".join(el.text_content().split()) for el in tree.iter("p", "li", "h2", "h3")
        ]
        text = "\n".join(p for p in paragraphs if p) or " ".join(tree.text_content().split())
        return _record(text, doc.short_title())
    except Exception:
        return _record()


def resiliparse(html: str, url: str) -> dict:
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    tree = HTMLTree.parse(html)
    text = extract_plain_text(tree, main_content=True, alt_texts=False, links=False)
    return _record(text, tree.title)


def newspaper3k(html: str, url: str) -> dict:
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
        return _record()
    return _record(article.text, article.title, article.authors, article.publish_date)


def run_extractor(extract: Extractor, pages: list[dict]) -> tuple[dict[str, dict], list[float]]:
    """Return each page's record and the CPU seconds each page took."""
    records, seconds = {}, []
    for page in pages:
        started = time.process_time()
        records[page["id"]] = extract(page["html"], page["url"])
        seconds.append(time.process_time() - started)
    return records, seconds


def run_newspaper3k(path: Path, pages: list[dict]) -> tuple[dict[str, dict], list[float]] | str:
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
    return result["records"], result["seconds"]


def child_newspaper3k() -> int:
    import newspaper

    if not newspaper.__version__.startswith("0.2"):
        raise SystemExit(
            f"expected newspaper3k 0.2.x first on the path, got {newspaper.__version__}"
        )
    records, seconds = run_extractor(newspaper3k, json.load(sys.stdin))
    json.dump({"records": records, "seconds": seconds}, sys.stdout)
    return 0


# ----------------------------------------------------------------------------- scoring fields
def fold_text(text: str) -> str:
    """Lowercase, every run of non-word characters one space (fundus-dev's convention)."""
    return re.sub(r"\W+", " ", (text or "").lower()).strip()


def same_title(got: str, want: str) -> bool:
    return fold_text(got) == fold_text(want)


def same_authors(got: list[str], want: list[str]) -> bool:
    return {fold_text(a) for a in got if fold_text(a)} == {
        fold_text(a) for a in want if fold_text(a)
    }


def same_day(got: str | None, want: str | None) -> bool:
    from transforms.page_meta import parse_date

    g, w = parse_date(got), parse_date(want)
    return (g is None and w is None) or (g is not None and w is not None and g.date() == w.date())


def field_scores(records: dict[str, dict], pages: list[dict]) -> dict[str, float]:
    """Return the share of pages whose title, authors and date are right."""
    scored = [p for p in pages if "title" in p]
    if not scored:
        return {}
    n = len(scored)
    return {
        "title": sum(same_title(records[p["id"]]["title"], p["title"]) for p in scored) / n,
        "authors": sum(same_authors(records[p["id"]]["authors"], p["authors"]) for p in scored) / n,
        "date": sum(same_day(records[p["id"]]["date"], p["date"]) for p in scored) / n,
    }


# ----------------------------------------------------------------------------- report
def score(name: str, records: dict[str, dict], seconds: list[float], pages, cases) -> dict:
    """Return one extractor's row: per set body P/R/F1 and fields, snippets, cost."""
    row: dict = {"extractor": name}
    for kind in ("aeb", "fundus", "snippets"):
        subset = [p for p in pages if p["set"] == kind]
        if kind != "snippets":
            body = summarize([page_scores(records[p["id"]]["body"], p["body"]) for p in subset])
            row |= {f"{kind}_{k}": v for k, v in body.items()}
        row |= {f"{kind}_{k}": v for k, v in field_scores(records, subset).items()}
    texts = {pid: r["body"] for pid, r in records.items()}
    row |= {f"snippets_{k}": v for k, v in snippet_scores(texts, cases).items()}
    ms = sorted(1000 * s for s in seconds)
    row["ms_median"] = statistics.median(ms)
    row["ms_p95"] = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    row["ms_mean"] = statistics.mean(ms)
    row["ms_max"] = ms[-1]
    return row


def _cell(row: dict, key: str, digits: int = 3) -> str:
    value = row.get(key)
    return "–" if value is None else f"{value:.{digits}f}"


def table(rows: list[dict], skipped: dict[str, str]) -> str:
    """Return the results as one Markdown table."""
    columns = [
        ("AEB F1", "aeb_f1"), ("AEB P", "aeb_precision"), ("AEB R", "aeb_recall"),
        ("fundus F1", "fundus_f1"), ("fundus title", "fundus_title"),
        ("fundus authors", "fundus_authors"), ("fundus date", "fundus_date"),
        ("snippets found", "snippets_with"), ("boilerplate out", "snippets_without"),
        ("snippets title", "snippets_title"), ("snippets authors", "snippets_authors"),
        ("snippets date", "snippets_date"),
    ]  # fmt: skip
    lines = [
        "| extractor | "
        + " | ".join(c for c, _ in columns)
        + " | ms median | ms p95 | ms mean | ms max |",
        "|---|" + "---|" * (len(columns) + 4),
    ]
    for r in rows:
        cells = " | ".join(_cell(r, key) for _, key in columns)
        costs = " | ".join(_cell(r, f"ms_{k}", 0) for k in ("median", "p95", "mean", "max"))
        lines.append(f"| {r['extractor']} | {cells} | {costs} |")
    lines += [f"| {name} | not run: {why} |" for name, why in skipped.items()]
    return "\n".join(lines)


def carry_over(rows: dict[str, dict], options: list[str], metric: str) -> list[str]:
    """Return lines: the option best on each set by ``metric``, and its figure on the other."""
    lines = []
    for tuned, other in (("aeb", "fundus"), ("fundus", "aeb")):
        best = max(options, key=lambda name: rows[name][f"{tuned}_{metric}"])
        lines.append(
            f"chosen on {tuned}: {best} ({tuned} {rows[best][f'{tuned}_{metric}']:.3f}); "
            f"on {other}: {rows[best][f'{other}_{metric}']:.3f} (best there "
            f"{max(rows[n][f'{other}_{metric}'] for n in options):.3f})"
        )
    return lines


def second_opinion(records: dict[str, dict[str, dict]], pages: list[dict]) -> list[str]:
    """Return lines: body F1 of the ``auto`` rule per ratio on both sets, the ratio chosen
    on one set reported on the other (from the rows of its three extractors)."""
    from transforms.extract import SECOND_OPINION_RATIO, word_count

    main, check, second = (
        records["trafilatura favor_precision"],
        records["resiliparse main content"],
        records["newspaper4k"],
    )

    def f1(ratio: float, kind: str) -> float:
        scores = []
        for p in (p for p in pages if p["set"] == kind):
            body = main[p["id"]]["body"]
            if word_count(body) < ratio * word_count(check[p["id"]]["body"]):
                body = second[p["id"]]["body"] or body
            scores.append(page_scores(body, p["body"]))
        return summarize(scores)["f1"]

    ratios = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    table = {r: {kind: f1(r, kind) for kind in ("aeb", "fundus")} for r in ratios}
    lines = [
        "  "
        + ", ".join(f"{r}: aeb {v['aeb']:.3f} fundus {v['fundus']:.3f}" for r, v in table.items())
    ]
    for tuned, other in (("aeb", "fundus"), ("fundus", "aeb")):
        best = max(ratios, key=lambda r: (table[r][tuned], -abs(r - SECOND_OPINION_RATIO)))
        lines.append(
            f"  ratio chosen on {tuned}: {best} ({tuned} {table[best][tuned]:.3f}); "
            f"on {other}: {table[best][other]:.3f}"
        )
    lines.append(f"  ratio in use: {SECOND_OPINION_RATIO}")
    return lines


def title_sources(pages: list[dict]) -> list[str]:
    """Return lines: title accuracy of each source alone and of each order of sources,
    the order chosen on one set reported on the other."""
    import itertools

    from transforms.bylines import clean_title, fold
    from transforms.extract import TITLE_SOURCES, parse_page
    from transforms.page_guesses import cheap_guesses
    from transforms.page_meta import read_page_meta
    from transforms.urls import source_domain

    rows = []  # (set, truth, {source: cleaned title})
    for page in pages:
        if "title" not in page:
            continue
        tree = parse_page(page["html"])
        meta = read_page_meta(tree)
        domain = source_domain(page["url"])
        found = {
            "headline": meta.headline,
            "meta_title": meta.meta_title,
            "extractor": cheap_guesses(tree, page["url"]).title,
            "html_title": meta.html_title,
        }
        cleaned = {
            k: clean_title(v, meta.site_names, domain) if v else "" for k, v in found.items()
        }
        cleaned["h1"] = {fold(h) for h in meta.headings if h}
        rows.append((page["set"], page["title"], cleaned))
    kinds = sorted({kind for kind, _, _ in rows})

    def pick(order: tuple[str, ...], got: dict, h1: bool) -> str:
        titles = [got[s] for s in order if got[s]]
        shown = next((t for t in titles if fold(t) in got["h1"]), None) if h1 else None
        return shown or (titles[0] if titles else "")

    def accuracy(order: tuple[str, ...], kind: str, h1: bool = False) -> float:
        subset = [(want, got) for k, want, got in rows if k == kind]
        return sum(same_title(pick(order, g, h1), w) for w, g in subset) / len(subset)

    lines = []
    for source in TITLE_SOURCES:
        cells = ", ".join(f"{kind} {accuracy((source,), kind):.3f}" for kind in kinds)
        lines.append(f"  {source} alone: {cells}")
    orders = list(itertools.permutations(TITLE_SOURCES))
    for tuned in kinds:
        other = next(k for k in kinds if k != tuned)
        best = max(orders, key=lambda o: (accuracy(o, tuned), o == TITLE_SOURCES))
        lines.append(
            f"  order chosen on {tuned}: {' > '.join(best)} ({tuned} {accuracy(best, tuned):.3f}); "
            f"on {other}: {accuracy(best, other):.3f}"
        )
    current = ", ".join(f"{kind} {accuracy(TITLE_SOURCES, kind):.3f}" for kind in kinds)
    lines.append(f"  the order in use ({' > '.join(TITLE_SOURCES)}): {current}")
    for tuned in kinds:
        other = next(k for k in kinds if k != tuned)
        best = max(orders, key=lambda o: (accuracy(o, tuned, True), o == TITLE_SOURCES))
        lines.append(
            f"  with the <h1> rule, order chosen on {tuned}: {' > '.join(best)} "
            f"({tuned} {accuracy(best, tuned, True):.3f}); on {other}: "
            f"{accuracy(best, other, True):.3f}"
        )
    in_use = ", ".join(f"{kind} {accuracy(TITLE_SOURCES, kind, True):.3f}" for kind in kinds)
    lines.append(f"  in use (the order above, a title that is the page's <h1> first): {in_use}")
    return lines


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
    sets = Counter(p["set"] for p in pages)
    print(", ".join(f"{kind}: {n} pages" for kind, n in sets.items()))
    extractors: dict[str, Extractor] = {
        "wirestream v2 (default: auto)": ours("auto"),
        "wirestream v2, backend trafilatura": ours("trafilatura"),
        "wirestream v1 / backend newspaper (newspaper4k + trafilatura)": ours("newspaper"),
        "trafilatura favor_precision": trafilatura_mode(favor_precision=True),
        "trafilatura favor_precision, body only (the body's floor)": trafilatura_mode(
            with_metadata=False, favor_precision=True
        ),
        "trafilatura favor_precision fast": trafilatura_mode(favor_precision=True, fast=True),
        "trafilatura fast": trafilatura_mode(fast=True),
        "trafilatura default": trafilatura_mode(),
        "readability-lxml": readability,
        "resiliparse main content": resiliparse,
        "newspaper4k": newspaper4k,
    }
    rows, skipped, all_records = [], {}, {}
    for name, extract in extractors.items():
        try:
            records, seconds = run_extractor(extract, pages)
        except ImportError as exc:
            skipped[name] = str(exc)
            continue
        all_records[name] = records
        rows.append(score(name, records, seconds, pages, cases))
        print(f"  scored {name}", file=sys.stderr, flush=True)
    result = run_newspaper3k(args.newspaper3k or cache_dir() / "newspaper3k", pages)
    if isinstance(result, str):
        skipped["newspaper3k 0.2.8"] = result
    else:
        rows.append(score("newspaper3k 0.2.8", *result, pages, cases))
    print(table(rows, skipped))
    by_name = {r["extractor"]: r for r in rows}
    modes = [n for n in by_name if n.startswith("trafilatura")]
    print("\nBody (trafilatura mode), chosen on one set, reported on the other:")
    print("\n".join(carry_over(by_name, modes, "f1")))
    print("\nBody (auto: newspaper4k when trafilatura has < ratio x resiliparse's words):")
    print("\n".join(second_opinion(all_records, pages)))
    print("\nTitle sources (cleaned of the site's name):")
    print("\n".join(title_sources(pages)))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
