"""Kibana saved objects: generated from the spec, self-contained, importable, and every
panel's aggregation returning buckets on data the real pipeline indexed."""

from __future__ import annotations

import copy
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import yaml

from pipeline.cli import main as cli_main
from pipeline.config import REPO_ROOT
from pipeline.kibana.check import check_live, panel_query, validate_bundle
from pipeline.kibana.objects import (
    BUNDLE,
    DASHBOARDS,
    SEARCHES,
    Names,
    build_objects,
    import_objects,
    read_ndjson,
    to_ndjson,
)
from transforms.index.templates import INDEX_TEMPLATE, STATS_TEMPLATE, STORIES_TEMPLATE

AGGREGATABLE = {"keyword", "date", "long", "integer", "float", "geo_point"}


def _mapped_types(properties: dict, prefix: str = "") -> dict[str, str]:
    types = {}
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        if "properties" in spec:
            types |= _mapped_types(spec["properties"], f"{path}.")
        else:
            types[path] = spec.get("type", "object")
        for sub, sub_spec in spec.get("fields", {}).items():
            types[f"{path}.{sub}"] = sub_spec["type"]
    return types


def test_committed_bundle_is_what_the_spec_generates():
    assert BUNDLE.read_text(encoding="utf-8") == to_ndjson(build_objects()), (
        "deploy/kibana/wirestream.ndjson is stale: run `wirestream kibana build`"
    )
    assert to_ndjson(build_objects()) == to_ndjson(build_objects())  # ids are stable


def test_every_object_parses_and_references_only_the_bundle():
    objects = read_ndjson(BUNDLE)
    assert {o["type"] for o in objects} == {"index-pattern", "search", "map", "dashboard"}
    results = validate_bundle(objects)
    assert [r for r in results if r.status != "ok"] == []
    titles = [o["attributes"]["title"] for o in objects if o["type"] == "dashboard"]
    assert titles == [
        "News overview",
        "Entities",
        "Places",
        "Stories",
        "Ingestion health",
        "Source health",
    ]


def test_broken_references_are_reported():
    objects = build_objects()
    broken = copy.deepcopy(objects)
    (overview,) = [o for o in broken if o["id"] == "wirestream-dashboard-news-overview"]
    overview["references"][0]["id"] = "no-such-view"
    (search,) = [o for o in broken if o["id"] == "wirestream-search-latest"]
    search["references"] = []
    bad = {r.name: r.detail for r in validate_bundle(broken) if r.status == "fail"}
    assert "not in the bundle" in bad["dashboard wirestream-dashboard-news-overview"]
    assert "searchSourceJSON.index" in bad["search wirestream-search-latest"]


def test_panels_use_fields_the_templates_map_as_aggregatable():
    articles = _mapped_types(
        json.loads(INDEX_TEMPLATE.read_text())["template"]["mappings"]["properties"]
    )
    stats = _mapped_types(
        json.loads(STATS_TEMPLATE.read_text())["template"]["mappings"]["properties"]
    )
    stories = _mapped_types(
        json.loads(STORIES_TEMPLATE.read_text())["template"]["mappings"]["properties"]
    )
    views = {"articles": articles, "stats": stats, "stories": stories}
    for dashboard in DASHBOARDS.values():
        for panel in dashboard.panels:
            mapped = views[panel.view]
            for field in panel.fields:
                assert mapped.get(field) in AGGREGATABLE, (dashboard.title, panel.title, field)
    for search in SEARCHES.values():
        assert set(search.columns) <= set(articles)


def test_lens_panels_mirror_the_spec():
    objects = {o["id"]: o for o in build_objects()}
    for key, spec in DASHBOARDS.items():
        panels = json.loads(objects[f"wirestream-dashboard-{key}"]["attributes"]["panelsJSON"])
        assert [p["title"] for p in panels] == [p.title for p in spec.panels]
        for panel, entry in zip(spec.panels, panels, strict=True):
            if entry["type"] != "lens":
                continue
            state = entry["embeddableConfig"]["attributes"]["state"]
            (layer,) = state["datasourceStates"]["formBased"]["layers"].values()
            used = {c.get("sourceField") for c in layer["columns"].values()} - {"___records___"}
            assert used == {b.field for b in panel.buckets} | (
                {panel.metric_of} if panel.metric != "count" else set()
            )
            assert layer["columnOrder"] == list(layer["columns"])


def test_panel_query_nests_buckets_and_filters():
    panel = DASHBOARDS["ingestion-health"].panels[1]  # indexed per source over time
    body = panel_query(panel)
    assert body["query"] == {"bool": {"filter": [{"term": {"stage": "indexed"}}]}}
    outer = body["aggs"]["b0"]
    assert outer["date_histogram"]["field"] == "@timestamp"
    assert outer["aggs"]["b1"]["terms"]["field"] == "source"
    assert outer["aggs"]["b1"]["aggs"] == {"items": {"sum": {"field": "count"}}}


class _FakeKibana(BaseHTTPRequestHandler):
    requests: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _FakeKibana.requests.append(
            {"path": self.path, "headers": dict(self.headers), "body": body}
        )
        answer = json.dumps(
            {
                "success": True,
                "successCount": sum(
                    line.startswith(b'{"attributes"') for line in body.splitlines()
                ),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_kibana():
    server = HTTPServer(("127.0.0.1", 0), _FakeKibana)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _FakeKibana.requests = []
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_import_posts_multipart_ndjson_with_auth(fake_kibana):
    ndjson = to_ndjson(build_objects())
    answer = import_objects(ndjson, fake_kibana + "/", username="elastic", password="pw")
    assert answer["success"]
    (request,) = _FakeKibana.requests
    assert request["path"] == "/api/saved_objects/_import?overwrite=true"
    assert request["headers"]["kbn-xsrf"]
    assert request["headers"]["Authorization"].startswith("Basic ")
    assert request["headers"]["Content-Type"].startswith("multipart/form-data")
    assert ndjson.encode() in request["body"]
    import_objects(ndjson, fake_kibana, api_key="a2V5", space="news")
    second = _FakeKibana.requests[1]
    assert second["path"].startswith("/s/news/api/saved_objects/_import")
    assert second["headers"]["Authorization"] == "ApiKey a2V5"


def test_cli_import_and_offline_check(fake_kibana, tmp_path, capsys):
    assert cli_main(["kibana", "import", "--kibana-url", fake_kibana]) == 0
    assert "imported 12 saved objects" in capsys.readouterr().out
    assert cli_main(["kibana", "check", "--offline"]) == 0
    stale = tmp_path / "stale.ndjson"
    stale.write_text(BUNDLE.read_text().replace("Top sources", "Top domains", 1))
    assert cli_main(["kibana", "check", "--offline", "--file", str(stale)]) == 1
    assert "differs from the spec" in capsys.readouterr().out


def test_compose_stack_parses_and_its_files_exist():
    compose = yaml.safe_load((REPO_ROOT / "deploy" / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) >= {"elasticsearch", "kibana", "kibana-setup", "pipeline"}
    assert ":${STACK_VERSION:-9." in services["elasticsearch"]["image"]
    assert ":${STACK_VERSION:-9." in services["kibana"]["image"]
    build = services["pipeline"]["build"]
    context = (REPO_ROOT / "deploy" / build["context"]).resolve()
    dockerfile = context / build["dockerfile"]
    assert context == REPO_ROOT and dockerfile.is_file()
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert (context / source).exists(), source
    for service in ("pipeline", "kibana-setup"):
        command = services[service]["command"]
        for flag in ("--config", "--file"):
            if flag in command:
                assert (REPO_ROOT / command[command.index(flag) + 1]).is_file()
    assert services["kibana-setup"]["command"][:2] == ["kibana", "import"]


# --- against the real node, after the real pipeline indexed the sample site --------------

PANELS = [
    f"{d.title} / {p.title}" for d in DASHBOARDS.values() for p in d.panels if p.chart != "search"
]
SEARCH_LABELS = [f"search: {s.title}" for s in SEARCHES.values()]
#: The sample site is English: every article has a model.
EMPTY_ON_THE_SAMPLE_SITE = {"Entities / Languages without an entity model"}


@pytest.fixture(scope="module")
def live_results(es_client, sample_stream):
    """The live check's results by name, on the shared sample-site run's indices."""
    prefix = sample_stream.alias
    es_client.indices.refresh(index=f"{prefix}*")
    names = Names(prefix, sample_stream.stats_index, f"{prefix}-stories")
    return {r.name: r for r in check_live(es_client, names)}


@pytest.mark.integration
@pytest.mark.runner
@pytest.mark.parametrize("label", SEARCH_LABELS + PANELS)
def test_panel_returns_buckets_on_pipeline_data(live_results, label):
    result = live_results[label]
    if label in EMPTY_ON_THE_SAMPLE_SITE:  # run and valid; tests/test_languages.py fills it
        assert result.status == "empty", f"{label}: {result.status}: {result.detail}"
        return
    assert result.status == "ok", f"{label}: {result.status}: {result.detail}"
    assert result.buckets > 0


@pytest.mark.integration
def test_a_panel_on_an_unmapped_field_fails_and_others_pass(es_client):
    from pipeline.kibana.check import check_panel

    index = f"test-{uuid.uuid4().hex[:8]}-nogeo"
    es_client.indices.create(index=index, mappings={"properties": {"source": {"type": "keyword"}}})
    try:
        es_client.index(index=index, document={"source": "a.example"}, refresh=True)
        (places, countries) = DASHBOARDS["places"].panels
        unmapped = check_panel(es_client, places, index, "map")
        assert unmapped.status == "fail" and "'locations' is not mapped" in unmapped.detail
        assert check_panel(es_client, countries, index, "countries").status == "fail"
        top_sources = DASHBOARDS["news-overview"].panels[1]
        assert check_panel(es_client, top_sources, index, "sources").status == "ok"
    finally:
        es_client.indices.delete(index=index)


@pytest.mark.integration
def test_missing_indices_are_reported_not_raised(es_client):
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    names = Names(prefix, f"{prefix}-stats", f"{prefix}-stories")
    (result,) = check_live(es_client, names)  # nothing indexed: one clear line
    assert result.status == "fail" and "not found" in result.detail

    es_client.indices.create(index=prefix, mappings={"properties": {"source": {"type": "keyword"}}})
    try:  # a backfill wrote articles; only a stream writes the stats index
        es_client.index(index=prefix, document={"source": "a.example"}, refresh=True)
        results = {r.name: r for r in check_live(es_client, names)}
        health = [r for name, r in results.items() if name.startswith("Ingestion health /")]
        assert health and all(r.status == "empty" for r in health)
        assert "a backfill does not" in health[0].detail
        stories = [r for name, r in results.items() if name.startswith("Stories /")]
        assert stories and all(r.status == "fail" for r in stories)  # no stories index
    finally:
        es_client.indices.delete(index=prefix)
