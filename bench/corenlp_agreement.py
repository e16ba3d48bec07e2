"""Token agreement between ``transforms.normalize.tokenize`` and CoreNLP's PTBTokenizer.

Runs Stanford CoreNLP's PTBTokenizer (no PTB escaping, hyphens split) and our
tokenizer on the same raw news text, aligns the two lowercased token sequences
per document with ``difflib.SequenceMatcher`` and prints the agreement and every
disagreement pair with its count, each tagged with the documented systematic
difference it belongs to (``docs/normalizer.md``), or ``UNEXPLAINED``.

    python bench/corenlp_agreement.py [--jar PATH] [--top 40]

Corpus: ``../shared/fixtures/tokeniser/gum-news/raw/*.txt``, the article text of
seed 001 and the ``articleBody`` texts of
``../shared/bench/article-extraction/ground-truth.json``.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(REPO))

from transforms.normalize import BOUND_PREFIXES, tokenize  # noqa: E402

CORENLP_OPTIONS = "ptb3Escaping=false,splitHyphenated=true"
DOC_BREAK = "wirestreamdocbreak"
#: FORMAT.md maps these characters; CoreNLP keeps them. Applied to CoreNLP's tokens
#: before comparing, so character mapping is not counted as a tokenisation difference.
FORMAT_CHARS = str.maketrans(
    {
        "\u2019": "'", "\u2018": "'", "\u201a": "'", "`": "'",
        "\u201c": '"', "\u201d": '"', "\u201e": '"',
        "\u2014": "-", "\u2013": "-", "\u2212": "-", "\u2026": "...", "\u00a0": " ",
    }
)  # fmt: skip
SEED001_BOILERPLATE = ("Published on", "Share This Article")
SEED001_DONATION_START = "This is the world we live in"


def find_corenlp_jar(explicit: str | None = None) -> Path | None:
    """Return the CoreNLP jar: ``--jar``, ``$CORENLP_JAR`` or the newest in ``~/.m2``."""
    if explicit:
        return Path(explicit)
    if os.environ.get("CORENLP_JAR"):
        return Path(os.environ["CORENLP_JAR"])
    root = Path.home() / ".m2/repository/edu/stanford/nlp/stanford-corenlp"
    jars = sorted(p for p in root.glob("*/stanford-corenlp-*.jar") if p.stem.count("-") == 2)
    return jars[-1] if jars else None


def seed001_article() -> str:
    """Return seed 001's article text: boilerplate and donation paragraphs removed."""
    text = (SHARED / "seeds/001_9461b1638c04e8de.txt").read_text(encoding="utf-8")
    text = text.split(SEED001_DONATION_START)[0]
    paragraphs = [p.strip() for p in text.split("\n\n")]
    return "\n\n".join(p for p in paragraphs if p and p not in SEED001_BOILERPLATE)


def corpus() -> list[tuple[str, str]]:
    """Return ``(name, raw text)`` for every document of the agreement corpus."""
    docs = [
        (p.stem, p.read_text(encoding="utf-8"))
        for p in sorted((SHARED / "fixtures/tokeniser/gum-news/raw").glob("*.txt"))
    ]
    docs.append(("seed001", seed001_article()))
    truth = json.loads((SHARED / "bench/article-extraction/ground-truth.json").read_text())
    docs += [(f"aeb-{key[:8]}", item["articleBody"]) for key, item in sorted(truth.items())]
    return docs


def corenlp_tokens(jar: Path, docs: list[tuple[str, str]]) -> list[list[str]]:
    """Return CoreNLP's tokens per document (one JVM run over all of them)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "corpus.txt"
        path.write_text("".join(f"{text}\n\n{DOC_BREAK}\n\n" for _, text in docs), "utf-8")
        out = subprocess.run(
            ["java", "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer",
             "-options", CORENLP_OPTIONS, "-preserveLines", str(path)],
            check=True, capture_output=True, text=True, encoding="utf-8",
        ).stdout  # fmt: skip
    per_doc: list[list[str]] = [[]]
    for token in out.split():
        if token == DOC_BREAK:
            per_doc.append([])
        else:
            per_doc[-1].append(token.lower().translate(FORMAT_CHARS))
    return per_doc[: len(docs)]


HYPHEN_SUFFIXES = ("esque", "ette", "fest", "fold", "gate", "itis", "less", "most", "rama", "wise")
ASSIMILATION_TAILS = ("na", "ta", "me", "nt", "re")


def _joined_prefix(ref: str, ours: str) -> bool:
    parts = ref.split(" - ")
    return len(parts) > 1 and ours == "-".join(parts) and parts[0] in BOUND_PREFIXES


def _prefix_chain(ref: str, ours: str) -> bool:
    first = ref.split("-")[0]
    return " " not in ref and first in BOUND_PREFIXES and ours.replace(" - ", "-") == ref


def _range(ref: str, ours: str) -> bool:
    """CoreNLP tokenised 6-3 as ``6 -3``; we split the hyphen: ``6 - 3``."""
    return bool(re.search(r"(?:^| )-\d", ref)) and re.sub(r"- (?=\d)", "-", ours) == ref


def _glued(ref: str, ours: str) -> bool:
    """CoreNLP split a token that has no split rule of ours inside (512 gb / 512gb)."""
    return " " in ref and " " not in ours and ref.replace(" ", "") == ours


#: Documented systematic differences (docs/normalizer.md), as (name, test on the
#: CoreNLP segment, our segment and the CoreNLP token before the segment).
CATEGORIES: list[tuple[str, Callable[[str, str, str], bool]]] = [
    (
        "D1 abbreviation-final period not doubled",
        lambda r, o, prev: r == "." and not o and prev.endswith("."),
    ),
    ("D2 al-/el- bound prefix (FORMAT)", lambda r, o, prev: _joined_prefix(r, o)),
    ("D3 a bound prefix binds one segment", lambda r, o, prev: _prefix_chain(r, o)),
    (
        "D4 hyphenated suffix split (-fold, -less, ...)",
        lambda r, o, prev: (
            " " not in r and r.endswith(HYPHEN_SUFFIXES) and o == r.replace("-", " - ")
        ),
    ),
    (
        "D5 assimilation kept (gonna, dont)",
        lambda r, o, prev: _glued(r, o) and r.split(" ")[-1] in ASSIMILATION_TAILS,
    ),
    (
        "D6 no split rule inside, kept whole (512gb, 6:00am, no.1997)",
        lambda r, o, prev: _glued(r, o) and any(c.isdigit() for c in r),
    ),
    (
        "D8 consecutive quote marks are separate tokens",
        lambda r, o, prev: " " not in r and set(r) <= set("'\"") and o == " ".join(r),
    ),
    (
        "D7 apostrophe word split ('90s, 80's, d')",
        lambda r, o, prev: "'" in r and " " not in r and o.replace(" ", "") == r,
    ),
    (
        "D9 letters before $ split off (us$)",
        lambda r, o, prev: r.endswith("$") and o == f"{r[:-1]} $",
    ),
    ("D10 SGML-like <...> spans not kept", lambda r, o, prev: "<" in r or ">" in r),
    (
        "D11 word! brand names split (yahoo!)",
        lambda r, o, prev: r.endswith("!") and o == f"{r[:-1]} !",
    ),
    (
        "D12 number range a-b (CoreNLP reads -b as a negative number)",
        lambda r, o, prev: _range(r, o),
    ),
    (
        "D13 period after a non-Latin abbreviation",
        lambda r, o, prev: (
            "." in r
            and r.replace(" ", "") == o.replace(" ", "")
            and not r.replace(".", "").replace(" ", "").isascii()
        ),
    ),
    ("D14 emoji sequence", lambda r, o, prev: _glued(o, r) and not r.isascii()),
]


def categorise(ref: str, ours: str, prev: str) -> str:
    """Return the documented difference a disagreement belongs to, or UNEXPLAINED."""
    for name, test in CATEGORIES:
        if test(ref, ours, prev):
            return name
    return "UNEXPLAINED"


def compare(ref_docs: list[list[str]], our_docs: list[list[str]]) -> dict[str, object]:
    """Return agreement figures and disagreement pair counts over aligned documents."""
    total = matched = 0
    pairs: Counter[tuple[str, str, str]] = Counter()
    documented = 0
    for ref, ours in zip(ref_docs, our_docs, strict=True):
        total += len(ref)
        matcher = difflib.SequenceMatcher(None, ref, ours, autojunk=False)
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op == "equal":
                matched += i2 - i1
                continue
            r, o = " ".join(ref[i1:i2]), " ".join(ours[j1:j2])
            category = categorise(r, o, ref[i1 - 1] if i1 else "")
            pairs[(category, r, o)] += 1
            if category != "UNEXPLAINED":
                documented += i2 - i1
    return {
        "tokens": total,
        "matched": matched,
        "agreement": matched / total,
        "agreement_outside_documented": matched / (total - documented),
        "pairs": pairs,
    }


def main(argv: list[str] | None = None) -> int:
    """Print the CoreNLP agreement report; return a process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jar", help="stanford-corenlp jar (default: newest in ~/.m2)")
    parser.add_argument("--top", type=int, default=40, help="disagreement pairs to list")
    args = parser.parse_args(argv)
    jar = find_corenlp_jar(args.jar)
    if jar is None or not jar.exists() or shutil.which("java") is None:
        print(
            "CoreNLP unavailable: fetch it with `mvn -q dependency:get -Dtransitive=false "
            "-Dartifact=edu.stanford.nlp:stanford-corenlp:4.5.7` and install java"
        )
        return 2
    docs = corpus()
    ref_docs = corenlp_tokens(jar, docs)
    our_docs = [tokenize(text) for _, text in docs]
    result = compare(ref_docs, our_docs)
    print(f"CoreNLP {jar.name} -options {CORENLP_OPTIONS}; {len(docs)} documents")
    print(f"CoreNLP tokens: {result['tokens']}, equal after alignment: {result['matched']}")
    print(f"agreement: {100 * result['agreement']:.2f}%")
    print(
        f"agreement outside documented differences: "
        f"{100 * result['agreement_outside_documented']:.2f}%"
    )
    by_category: Counter[str] = Counter()
    for (category, _, _), count in result["pairs"].items():
        by_category[category] += count
    print("\n| difference | occurrences |\n|---|---|")
    for category, count in by_category.most_common():
        print(f"| {category} | {count} |")
    print("\n| count | CoreNLP | ours | difference |\n|---|---|---|---|")
    for (category, ref, ours), count in result["pairs"].most_common(args.top):
        print(f"| {count} | `{ref}` | `{ours}` | {category} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
