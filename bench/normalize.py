"""Throughput of ``transforms.normalize.normalize_text``, and of three other tokenizers.

Builds 1, 10 and 100 MB of news text (paragraphs of ``../shared`` gum-news raw
articles and seed 001, shuffled with a fixed seed) and pathological inputs (runs of
punctuation, hyphens, apostrophes, a string without spaces), times ours on each as
one string and prints a markdown table: seconds, MB/s and the time ratio to the
smallest size (linear time means the ratio follows the size). On the news text it
times sacremoses, NLTK's TreebankWordTokenizer and CoreNLP's PTBTokenizer too, in
the same run (one run each; ours is the best of ``--repeat`` runs below 100 MB); a
competitor that is not installed is skipped with the reason.

    python bench/normalize.py                  # 1, 10, 100 MB
    python bench/normalize.py --sizes 1,10     # shorter
"""

from __future__ import annotations

import argparse
import gc
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(REPO))

from transforms.normalize import normalize_text  # noqa: E402

MB = 1_000_000
CORENLP_OPTIONS = "ptb3Escaping=false,splitHyphenated=true"


def news_paragraphs() -> list[str]:
    """Return the raw news paragraphs the benchmark text is built from."""
    texts = [
        p.read_text("utf-8")
        for p in sorted((SHARED / "fixtures/tokeniser/gum-news/raw").glob("*.txt"))
    ]
    texts.append((SHARED / "seeds/001_9461b1638c04e8de.txt").read_text("utf-8"))
    return [p.strip() for text in texts for p in text.split("\n\n") if p.strip()]


def news_text(size_mb: int, paragraphs: list[str]) -> str:
    """Return about ``size_mb`` MB (UTF-8) of shuffled news paragraphs."""
    rng = random.Random(size_mb)
    out: list[str] = []
    size = 0
    while size < size_mb * MB:
        batch = paragraphs[:]
        rng.shuffle(batch)
        for paragraph in batch:
            out.append(paragraph)
            size += len(paragraph.encode("utf-8")) + 2
            if size >= size_mb * MB:
                break
    return "\n\n".join(out)


def pathological(size_mb: int, news: str) -> dict[str, str]:
    """Return the pathological inputs of about ``size_mb`` MB each."""
    n = size_mb * MB

    def fill(unit: str) -> str:
        return (unit * (n // len(unit) + 1))[:n]

    return {
        "punctuation run": fill(",.;:!?()[]\"'-"),
        "hyphens": fill("-"),
        "hyphen chain a-a-a": fill("a-"),
        "apostrophes": fill("'"),
        "apostrophe chain a'a'a": fill("a'"),
        "clitic chain n'tn't": fill("n't"),
        "periods": fill("."),
        "no spaces (news)": fill("".join(news.split())),
    }


def timed(function: Callable[[], object], repeat: int = 1) -> float:
    """Return the best wall time of ``repeat`` calls, with the garbage collector paused."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            function()
            best = min(best, time.perf_counter() - start)
        finally:
            gc.enable()
    return best


def per_line(tokenize: Callable[[str], object]) -> Callable[[str], object]:
    """Return a whole-text runner for a tokenizer made for one line at a time."""
    return lambda text: [tokenize(line) for line in text.splitlines() if line]


def competitors() -> dict[str, Callable[[str], object] | str]:
    """Return name -> runner, or name -> the reason it is skipped."""
    found: dict[str, Callable[[str], object] | str] = {}
    try:
        from sacremoses import MosesTokenizer

        moses = MosesTokenizer(lang="en")
        found["sacremoses"] = per_line(lambda line: moses.tokenize(line, escape=False))
    except ImportError as exc:
        found["sacremoses"] = f"not installed ({exc}); pip install sacremoses"
    try:
        from nltk.tokenize import TreebankWordTokenizer

        found["NLTK Treebank"] = per_line(TreebankWordTokenizer().tokenize)
    except ImportError as exc:
        found["NLTK Treebank"] = f"not installed ({exc}); pip install nltk"
    jar = corenlp_jar()
    if jar is None or shutil.which("java") is None:
        found["CoreNLP PTBTokenizer"] = (
            "no java or no jar; mvn -q dependency:get -Dtransitive=false "
            "-Dartifact=edu.stanford.nlp:stanford-corenlp:4.5.7"
        )
    else:
        found["CoreNLP PTBTokenizer"] = CoreNLPRunner(jar)
    return found


def corenlp_jar() -> Path | None:
    """Return the newest stanford-corenlp main jar in ~/.m2, if any."""
    root = Path.home() / ".m2/repository/edu/stanford/nlp/stanford-corenlp"
    jars = sorted(p for p in root.glob("*/stanford-corenlp-*.jar") if p.stem.count("-") == 2)
    return jars[-1] if jars else None


class CoreNLPRunner:
    """Times PTBTokenizer on a file, minus the time of a JVM run on a tiny file."""

    def __init__(self, jar: Path) -> None:
        self.jar = jar
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-corenlp-"))
        tiny = self.tmp / "tiny.txt"
        tiny.write_text("Hello world.", "utf-8")
        self.startup = min(self._run(tiny) for _ in range(2))

    def _run(self, path: Path) -> float:
        command = ["java", "-cp", str(self.jar), "edu.stanford.nlp.process.PTBTokenizer",
                   "-options", CORENLP_OPTIONS, "-preserveLines", str(path)]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - start

    def seconds(self, text: str) -> float:
        """Return PTBTokenizer's time on ``text`` without the JVM start."""
        path = self.tmp / "text.txt"
        path.write_text(text, "utf-8")
        try:
            return max(self._run(path) - self.startup, 1e-9)
        finally:
            path.unlink()


def main(argv: list[str] | None = None) -> int:
    """Print the benchmark table; return a process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,100", help="news text sizes in MB (1,10,100)")
    parser.add_argument("--pathological-sizes", default="1,10", help="sizes in MB (1,10)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="best of N runs of ours below 100 MB (3)"
    )
    parser.add_argument(
        "--competitor-max", type=int, default=10, help="largest MB the other tokenizers run on"
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    path_sizes = [int(s) for s in args.pathological_sizes.split(",") if s]

    others = competitors()
    for name, runner in others.items():
        if isinstance(runner, str):
            print(f"skipping {name}: {runner}")
    names = list(others)
    print(
        f"\npython {sys.version.split()[0]}; CoreNLP options {CORENLP_OPTIONS}; "
        "others run on the same text, one line at a time where they are line tokenizers\n"
    )
    header = (
        "| input | MB | ours s | ours MB/s | time ratio | "
        + " | ".join(f"{n} MB/s" for n in names)
        + " |"
    )
    print(header)
    print("|" + "---|" * (5 + len(names)))

    paragraphs = news_paragraphs()
    base: float | None = None
    base_mb = 0.0
    for size in sizes:
        text = news_text(size, paragraphs)
        mb = len(text.encode("utf-8")) / MB
        seconds = timed(lambda text=text: normalize_text(text), args.repeat if size < 100 else 1)
        if base is None:
            base, base_mb = seconds, mb
        cells = []
        for name in names:
            runner = others[name]
            if isinstance(runner, str):
                cells.append("skipped")
            elif size > args.competitor_max:
                cells.append("not run")
            elif isinstance(runner, CoreNLPRunner):
                cells.append(f"{mb / runner.seconds(text):.2f}")
            else:
                cells.append(f"{mb / timed(lambda r=runner, t=text: r(t)):.2f}")
        ratio = f"{seconds / base:.1f} (size {mb / base_mb:.0f})"
        print(f"| news text | {mb:.1f} | {seconds:.2f} | {mb / seconds:.2f} | {ratio} | "
              + " | ".join(cells) + " |", flush=True)  # fmt: skip

    news = news_text(max(path_sizes), paragraphs)
    rows: dict[str, list[tuple[float, float]]] = {}
    for size in path_sizes:
        for name, text in pathological(size, news).items():
            mb = len(text.encode("utf-8")) / MB
            seconds = timed(lambda text=text: normalize_text(text), args.repeat)
            rows.setdefault(name, []).append((mb, seconds))
    for name, results in rows.items():
        first_mb, first_s = results[0]
        for mb, seconds in results:
            ratio = f"{seconds / first_s:.1f} (size {mb / first_mb:.0f})"
            print(f"| {name} | {mb:.1f} | {seconds:.2f} | {mb / seconds:.2f} | {ratio} | "
                  + " | ".join("" for _ in names) + " |", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
