"""The ``wirestream`` command line: run, demo, local services, and one-shot tools."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from pathlib import Path

from pipeline.config import REPO_ROOT, ConfigError, Settings, load_settings
from pipeline.progress import print_summary

log = logging.getLogger("wirestream")


def _es_overrides(args: argparse.Namespace) -> dict:
    return {
        "url": args.es_url,
        "api_key": args.es_api_key,
        "username": args.es_user,
        "password": args.es_password,
        "ca_certs": args.es_ca_certs,
        "engine": args.engine,
    }


def _settings(args: argparse.Namespace) -> Settings:
    """Return the profile's settings with the command line's Elasticsearch flags applied."""
    return load_settings(args.config).with_overrides(elasticsearch=_es_overrides(args))


def beam_arguments(args: argparse.Namespace, beam_args: list[str], streaming: bool) -> list[str]:
    """Return the Beam arguments of a run from the CLI's runner flags, and say where it runs."""
    import os

    from pipeline.services.runners import RUNNERS, choose_runner, runner_args

    runner, master = getattr(args, "runner", None), getattr(args, "flink_master", None)
    if runner and runner not in RUNNERS:  # a Beam runner by name, e.g. DataflowRunner
        return runner_args([f"--runner={runner}", *beam_args], streaming)
    chosen = choose_runner(runner, master, streaming)
    resolved = runner_args(beam_args, streaming, chosen, master)
    if chosen == "flink":
        where = f"the Flink cluster at {master}" if master else "the local Flink cluster"
        log.info("running on %s", where)
    elif chosen == "direct":
        log.info("running on Beam's DirectRunner: %d worker processes", os.cpu_count() or 1)
    elif not streaming and (os.cpu_count() or 1) > 1:
        log.info("running on Prism: one Python process (--runner auto or direct uses every core)")
    return resolved


def _add_runner_flags(parser: argparse.ArgumentParser, default: str) -> None:
    group = parser.add_argument_group("runner")
    group.add_argument(
        "--runner",
        default=default,
        help="prism (local, one Python process), direct (Beam's DirectRunner, a worker "
        "process per core, batch only), flink (the local cluster of `wirestream flink start`; "
        "with --flink-master a cluster of yours), auto (flink when the local cluster runs, "
        "else direct for a backfill on several cores, else prism), or any Beam runner name "
        f"(default {default})",
    )
    group.add_argument(
        "--flink-master", help="HOST:PORT of your Flink cluster's REST endpoint (implies flink)"
    )


def _add_es_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Elasticsearch")
    group.add_argument("--es-url", help="cluster URL (default from the profile, else local node)")
    group.add_argument("--es-api-key", help="API key (base64 'id:key' as Kibana shows it)")
    group.add_argument("--es-user", help="basic-auth user")
    group.add_argument("--es-password", help="basic-auth password")
    group.add_argument("--es-ca-certs", help="CA certificate file for https clusters")
    group.add_argument(
        "--engine",
        choices=["elasticsearch", "opensearch"],
        help="the search engine at --es-url (default from the profile, else elasticsearch)",
    )


def cmd_run(args: argparse.Namespace, beam_args: list[str]) -> int:
    from pipeline.job import run_job
    from pipeline.stream import stream_job

    beam_args = beam_arguments(args, beam_args, True)
    settings = _settings(args)
    if args.since:
        settings = settings.with_overrides(stream={"since": args.since})
    return run_job(stream_job(settings, args.duration), beam_args)


def cmd_backfill(args: argparse.Namespace, beam_args: list[str]) -> int:
    from pipeline.backfill import backfill_job, classify_source
    from pipeline.job import run_job

    try:
        sources = [classify_source(source) for source in args.sources]
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    filters = {"since": args.since, "until": args.until}
    filters |= {"sources": args.source, "languages": args.language}
    if args.redo:
        filters["resume"] = False
    settings = load_settings(args.config).with_overrides(
        elasticsearch=_es_overrides(args), backfill=filters
    )
    beam_args = beam_arguments(args, beam_args, streaming=False)
    job = backfill_job(settings, sources, beam_args, not args.no_progress, args.summary_json)
    return run_job(job, beam_args)


def cmd_demo(args: argparse.Namespace, beam_args: list[str]) -> int:
    from pipeline.job import run_job
    from pipeline.services import local_es
    from pipeline.services.sample_site import feed_urls, serve_sample_site
    from pipeline.stream import stream_job

    started = time.monotonic()
    base = load_settings(args.config)
    engine = local_es.ENGINES[args.engine or base.elasticsearch.engine]
    url = args.es_url or local_es.start(engine=engine)
    print(f"{engine.title} ready at {url}")
    try:
        site = serve_sample_site(port=args.site_port)
    except OSError as exc:
        raise SystemExit(
            f"error: cannot serve the sample site on 127.0.0.1:{args.site_port} ({exc.strerror}); "
            "pick another port with --site-port"
        ) from None
    with site:
        feeds = [{"interval": args.interval, **feed} for feed in feed_urls(site)]
        print(f"sample news site at {site.base_url}: {len(feeds)} feeds")
        settings = base.with_overrides(
            feeds=feeds,
            fetch={"allow_private_addresses": True},
            elasticsearch={**_es_overrides(args), "url": url},
        )
        print(f"streaming on Prism for {args.duration:g}s ...", flush=True)
        code = run_job(stream_job(settings, args.duration), beam_arguments(args, beam_args, True))
    print(f"\ndemo finished in {time.monotonic() - started:.0f}s")
    return code


def cmd_feeds(args: argparse.Namespace, _beam_args: list[str]) -> int:
    from pipeline.discover import discover, profile_block
    from transforms.fetch import make_session

    fetch = load_settings(args.config).fetch
    with make_session(fetch) as session:
        found = discover(session, args.urls, fetch)
    print(profile_block(found), end="")
    return 0 if found.feeds or found.sitemaps else 1


def cmd_es(args: argparse.Namespace, _beam_args: list[str]) -> int:
    from pipeline.services import local_es

    port = ["--port", str(args.port)] if args.port else []
    return local_es.main([args.action, "--engine", args.engine, *port])


def cmd_flink(args: argparse.Namespace, _beam_args: list[str]) -> int:
    from pipeline.services import flink

    return flink.main([args.action] + (["--slots", str(args.slots)] if args.slots else []))


def cmd_setup(_args: argparse.Namespace, _beam_args: list[str]) -> int:
    from pipeline.services import flink, local_es
    from pipeline.services.runners import build_prism
    from transforms.gazetteer import default_path, write_gazetteer

    print(f"Prism: {build_prism()}")
    print(f"Elasticsearch: {local_es.fetch()}")
    print(f"OpenSearch: {local_es.fetch(engine=local_es.OPENSEARCH)}")
    job_server, patch = flink.build()
    print(f"Flink job server: {job_server}\nFlink runner patch: {patch}")
    gazetteer = default_path()
    print(f"Gazetteer: {gazetteer if gazetteer.exists() else write_gazetteer(gazetteer)}")
    return 0


def cmd_gazetteer(args: argparse.Namespace, _beam_args: list[str]) -> int:
    from transforms.gazetteer import default_path, write_gazetteer

    print(write_gazetteer(args.out or default_path(args.min_population), args.min_population))
    return 0


def cmd_normalize(args: argparse.Namespace, _beam_args: list[str]) -> int:
    from transforms.normalize import normalize_text

    data = (
        Path(args.file).read_bytes() if args.file and args.file != "-" else sys.stdin.buffer.read()
    )
    sys.stdout.write(normalize_text(data.decode("utf-8", errors="replace")) + "\n")
    return 0


def cmd_extract(args: argparse.Namespace, _beam_args: list[str]) -> int:
    from pipeline.pages import extract_pages

    settings = load_settings(args.config)
    backend = args.backend or settings.extract.backend
    records = extract_pages(
        args.pages, args.url or [], not args.no_entities, settings.enrich, backend
    )
    for record in records:
        print(json.dumps(record, ensure_ascii=False))
    return 0


def cmd_stories(args: argparse.Namespace, _beam_args: list[str]) -> int:
    from pipeline.pages import Enrichment
    from pipeline.story_pass import assign_rows, clusterer_of, read_rows

    settings = load_settings(args.config).with_overrides(
        stories={
            "threshold": args.threshold,
            "short_threshold": args.short_threshold,
            "entity_weight": args.entity_weight,
            "window_hours": args.window_hours,
            "copy_threshold": args.copy_threshold,
            "refine": False if args.one_pass else None,
        }
    )
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text("utf-8")
        rows = list(read_rows(text.splitlines()))
    except (OSError, ValueError) as exc:
        print(f"error: {args.file}: {exc}", file=sys.stderr)
        return 2
    enrichment = None if args.no_entities else Enrichment(settings.enrich)
    for assignment in assign_rows(rows, clusterer_of(settings.stories, batch=True), enrichment):
        record = {
            "id": assignment.doc_id,
            "story_id": assignment.story_id,
            "duplicate_of": assignment.duplicate_of,
        }
        print(json.dumps(record, ensure_ascii=False))
    return 0


def cmd_replay(args: argparse.Namespace, _beam_args: list[str]) -> int:
    from transforms.dead_letters import read_dead_letters
    from transforms.index.client import make_client
    from transforms.index.replay import replay_records

    settings = _settings(args)
    client = make_client(settings.elasticsearch, retries=0)  # bulk_index retries batches
    done = replay_records(client, read_dead_letters(args.files), settings.elasticsearch)
    print("\n".join(done.lines()))
    return 0 if not done.failed else 1


def cmd_summary(args: argparse.Namespace, _beam_args: list[str]) -> int:
    print_summary(_settings(args))
    return 0


def cmd_sources(args: argparse.Namespace, _beam_args: list[str]) -> int:
    from pipeline.sources_report import print_sources
    from transforms.index.client import make_client
    from transforms.index.names import stats_index_name

    settings = _settings(args)
    client = make_client(settings.elasticsearch)
    try:
        index = stats_index_name(settings.elasticsearch, settings.stats)
        print_sources(client, index, args.days, args.flagged)
    finally:
        client.close()
    return 0


def _kibana_names(args: argparse.Namespace):
    from pipeline.kibana.objects import DEFAULT_ENTITY, Names
    from transforms.index.names import stats_index_name

    settings = _settings(args)
    es = settings.elasticsearch
    from transforms.index.names import stories_index_name

    return Names(
        es.alias,
        stats_index_name(es, settings.stats),
        stories_index_name(es),
        args.entity or DEFAULT_ENTITY,
    )


def cmd_kibana(args: argparse.Namespace, _beam_args: list[str]) -> int:
    from pipeline.kibana import objects as kibana

    names = _kibana_names(args)
    if args.action == "build":
        out = Path(args.out or kibana.BUNDLE)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(kibana.to_ndjson(kibana.build_objects(names)), encoding="utf-8")
        print(f"wrote {out}")
        return 0
    if args.action == "import":
        if not args.kibana_url:
            raise SystemExit("error: kibana import needs --kibana-url")
        ndjson = (
            Path(args.file).read_text(encoding="utf-8")
            if args.file
            else kibana.to_ndjson(kibana.build_objects(names))
        )
        answer = kibana.import_objects(
            ndjson,
            args.kibana_url,
            username=args.kibana_user,
            password=args.kibana_password,
            api_key=args.kibana_api_key,
            space=args.space,
            ca_certs=args.kibana_ca_certs,
        )
        print(f"imported {answer.get('successCount', 0)} saved objects into {args.kibana_url}")
        for error in answer.get("errors", []):
            print(f"  {error.get('type')} {error.get('id')}: {error.get('error')}")
        return 0 if answer.get("success") else 1
    return _kibana_check(args, names)


def _kibana_check(args: argparse.Namespace, names) -> int:
    from pipeline.kibana.check import check_all
    from pipeline.kibana.objects import BUNDLE, read_ndjson
    from transforms.index.client import OpenSearchClient, make_client

    path = Path(args.file or BUNDLE)
    objects = read_ndjson(path)
    settings = _settings(args)
    if settings.elasticsearch.engine == "opensearch" and not args.offline:
        print(
            "error: the Kibana objects are for Elasticsearch and Kibana; with OpenSearch "
            "see deploy/opensearch/README.md (or pass --offline to check the bundle alone)",
            file=sys.stderr,
        )
        return 2
    client = None if args.offline else make_client(settings.elasticsearch)
    assert not isinstance(client, OpenSearchClient)
    results = check_all(objects, client, names)
    for result in results:
        detail = f": {result.detail}" if result.detail else ""
        print(f"{result.status.upper():<8} {result.name}{detail}")
    failed = [r for r in results if r.status == "fail"]
    print(f"\n{path}: {len(results)} checks, {len(failed)} failed")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wirestream",
        description="Streaming news ingestion: feeds -> articles -> normalised text -> entities "
        "-> Elasticsearch. Options not listed here are passed to Apache Beam "
        "(e.g. --parallelism=4, --checkpointing_interval=60000).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="poll the configured feeds and index continuously")
    run.add_argument("--config", required=True, help="profile YAML, e.g. configs/local.yaml")
    run.add_argument(
        "--duration", type=float, help="stop after this many seconds (default: run until Ctrl-C)"
    )
    run.add_argument(
        "--since",
        help="skip feed items published before this ISO date (stream.since; undated items "
        "are taken)",
    )
    _add_runner_flags(run, "prism")
    _add_es_flags(run)
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser("demo", help="local node + bundled sample site + a bounded streaming run")
    demo.add_argument("--duration", type=float, default=60.0, help="seconds to stream (default 60)")
    demo.add_argument(
        "--interval", type=float, default=20.0, help="seconds between polls of each feed"
    )
    demo.add_argument("--config", default=str(REPO_ROOT / "configs" / "demo.yaml"))
    demo.add_argument(
        "--site-port",
        type=int,
        default=8765,
        help="port of the sample site on 127.0.0.1 (fixed, so article URLs and ids stay the same)",
    )
    _add_es_flags(demo)
    demo.set_defaults(func=cmd_demo)

    backfill = sub.add_parser(
        "backfill",
        help="index archives in batch: WARC files, saved feeds, URL lists, text folders, sitemaps",
    )
    backfill.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help="a .warc/.warc.gz path or glob (s3://, gs:// too), a feed or URL-list file, or a "
        "folder of those or of text articles; prefix warc:, feeds:, urls: or text: to say which; "
        "sitemap:URL (a sitemap, sitemap index or robots.txt) or sitemap:FILE for a site's archive",
    )
    backfill.add_argument("--config", help="profile YAML (Elasticsearch, fetch, enrich settings)")
    backfill.add_argument("--since", help="keep articles published on or after this ISO date")
    backfill.add_argument("--until", help="keep articles published before this ISO date")
    backfill.add_argument("--source", action="append", help="keep this domain (repeatable)")
    backfill.add_argument("--language", action="append", help="keep this language (repeatable)")
    backfill.add_argument("--no-progress", action="store_true", help="no progress bar")
    backfill.add_argument("--summary-json", help="also write the run's counts to this file")
    backfill.add_argument(
        "--redo",
        action="store_true",
        help="extract and index everything again, even inputs already indexed with the "
        "same content (by default a re-run or restart skips them)",
    )
    _add_runner_flags(backfill, "auto")
    _add_es_flags(backfill)
    backfill.set_defaults(func=cmd_backfill)

    flink = sub.add_parser(
        "flink", help="manage the local Flink session cluster (all cores; `--runner flink`)"
    )
    flink.add_argument("action", choices=["start", "stop", "status", "build"])
    flink.add_argument("--slots", type=int, help="task slots (default: one per core)")
    flink.set_defaults(func=cmd_flink)

    feeds = sub.add_parser("feeds", help="find a site's feeds and sitemaps")
    feeds_sub = feeds.add_subparsers(dest="action", required=True)
    find = feeds_sub.add_parser(
        "discover",
        help="read pages' <link rel=alternate> feeds and robots.txt sitemaps; print a "
        "profile block of those that parse",
    )
    find.add_argument("urls", nargs="+", metavar="URL", help="a site's home page (or any page)")
    find.add_argument("--config", help="profile YAML whose fetch settings to use")
    find.set_defaults(func=cmd_feeds)

    es = sub.add_parser("es", help="manage the local single-node Elasticsearch")
    es.add_argument("action", choices=["start", "stop", "status"])
    es.add_argument("--port", type=int, help="default 9200")
    es.set_defaults(func=cmd_es, engine="elasticsearch")
    opensearch = sub.add_parser(
        "opensearch", help="manage a local single-node OpenSearch (port 9201), beside it"
    )
    opensearch.add_argument("action", choices=["start", "stop", "status"])
    opensearch.add_argument("--port", type=int, help="default 9201")
    opensearch.set_defaults(func=cmd_es, engine="opensearch")

    setup = sub.add_parser(
        "setup",
        help="build Prism and the Flink job server, fetch Elasticsearch and OpenSearch, build "
        "the gazetteer (into the cache)",
    )
    setup.set_defaults(func=cmd_setup)

    gaz = sub.add_parser("gazetteer", help="build the offline gazetteer file; print its path")
    gaz.add_argument("--min-population", type=int, choices=[500, 1000, 5000, 15000], default=5000)
    gaz.add_argument("--out", type=Path, help="file to write (default: the wirestream cache)")
    gaz.set_defaults(func=cmd_gazetteer)

    norm = sub.add_parser("normalize", help="print FILE (or stdin) in the normalised format")
    norm.add_argument("file", nargs="?", help="UTF-8 text file; '-' or nothing reads stdin")
    norm.set_defaults(func=cmd_normalize)

    extract = sub.add_parser("extract", help="extract article pages, print one JSON line each")
    extract.add_argument("pages", nargs="+", help="HTML files (.gz allowed), '-' for stdin")
    extract.add_argument("--url", action="append", help="address of each PAGE, in order")
    extract.add_argument("--no-entities", action="store_true", help="skip entity tagging")
    extract.add_argument("--config", help="profile YAML (for the extract and enrich settings)")
    extract.add_argument(
        "--backend",
        choices=["auto", "trafilatura", "newspaper"],
        help="body extractor (extract.backend)",
    )
    extract.set_defaults(func=cmd_extract)

    stories = sub.add_parser(
        "stories", help="assign stories and copies to articles in a JSONL file, one line each"
    )
    stories.add_argument(
        "file", help="one JSON object per line: id, title, body, published_at, source, url"
    )
    stories.add_argument("--config", help="profile YAML (the stories and enrich settings)")
    stories.add_argument("--threshold", type=float, help="least similarity to join a story")
    stories.add_argument(
        "--short-threshold", type=float, help="the same for a body under 50 words (headlines)"
    )
    stories.add_argument("--entity-weight", type=float, help="share of entity overlap (0-1)")
    stories.add_argument("--window-hours", type=float, help="hours a story stays open")
    stories.add_argument("--copy-threshold", type=float, help="least shingle Jaccard for a copy")
    stories.add_argument("--no-entities", action="store_true", help="skip entity tagging")
    stories.add_argument(
        "--one-pass",
        action="store_true",
        help="assign as the stream does (one pass, IDF as articles come), not as the backfill",
    )
    stories.set_defaults(func=cmd_stories)

    replay = sub.add_parser("replay", help="re-index documents from dead-letter files")
    replay.add_argument(
        "files",
        nargs="+",
        help="dead-letter JSON-lines files, folders of them or globs (s3://, gs:// too)",
    )
    replay.add_argument("--config", help="profile YAML (for the Elasticsearch settings)")
    _add_es_flags(replay)
    replay.set_defaults(func=cmd_replay)

    summary = sub.add_parser("summary", help="print what is in the index")
    summary.add_argument("--config", help="profile YAML (for the Elasticsearch settings)")
    _add_es_flags(summary)
    summary.set_defaults(func=cmd_summary)

    sources = sub.add_parser(
        "sources", help="print each source's health: yields, walls, drift flags"
    )
    sources.add_argument("--config", help="profile YAML (for the stats index)")
    sources.add_argument("--days", type=int, default=7, help="days to read (default 7)")
    sources.add_argument("--flagged", action="store_true", help="only flagged sources")
    _add_es_flags(sources)
    sources.set_defaults(func=cmd_sources)

    kib = sub.add_parser("kibana", help="build, import or check the Kibana saved objects")
    kib.add_argument("action", choices=["build", "import", "check"])
    kib.add_argument("--config", help="profile YAML (alias, stats index, Elasticsearch)")
    kib.add_argument("--entity", default=None, help="entity of the 'mentioning' saved search")
    kib.add_argument("--file", help="NDJSON to import or check (default: generated/bundled)")
    kib.add_argument("--out", default=None, help="build: where to write (default: the bundle)")
    group = kib.add_argument_group("Kibana (import)")
    group.add_argument("--kibana-url", help="e.g. http://localhost:5601")
    group.add_argument("--kibana-user", help="basic-auth user")
    group.add_argument("--kibana-password", help="basic-auth password")
    group.add_argument("--kibana-api-key", help="API key (base64 'id:key')")
    group.add_argument("--kibana-ca-certs", help="CA certificate file for https")
    group.add_argument("--space", help="Kibana space id (default space if omitted)")
    check = kib.add_argument_group("check")
    check.add_argument("--offline", action="store_true", help="skip the live Elasticsearch checks")
    _add_es_flags(kib)
    kib.set_defaults(func=cmd_kibana)
    return parser


def _drop_import_noise(record: logging.LogRecord) -> bool:
    # Beam logs this on the root logger when optional GCP libraries are absent.
    return not record.getMessage().startswith("apitools not found")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, beam_args = parser.parse_known_args(argv)
    if beam_args and args.command not in ("run", "demo", "backfill"):
        parser.error(f"unrecognized arguments: {' '.join(beam_args)}")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for ours in ("wirestream", "pipeline", "transforms"):
        logging.getLogger(ours).setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if not args.verbose:  # Beam's runner chatter; our own warnings stay visible
        for name in ("PrismRunner", "elastic_transport", "apache_beam"):
            logging.getLogger(name).setLevel(logging.ERROR)
        logging.getLogger().handlers[0].addFilter(_drop_import_noise)
        warnings.filterwarnings("ignore", message="nltk is not installed")
    from pipeline.services.flink import FlinkError
    from pipeline.services.local_es import LocalElasticsearchError
    from pipeline.services.runners import RunnerError

    try:
        return args.func(args, beam_args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (LocalElasticsearchError, RunnerError, FlinkError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
