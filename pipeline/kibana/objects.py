"""Kibana saved objects built from a short declarative spec, and their import.

``DASHBOARDS`` below is the spec: every panel names its data view, its buckets and its
metric, so the Lens state, the map layer, the saved searches and the Elasticsearch
query that ``wirestream kibana check`` runs for each panel all come from one place.
``build_objects()`` turns it into Kibana 9 saved objects (the import/export NDJSON
format); ``import_objects()`` posts them to Kibana's saved-objects import API.

Format: data views (``index-pattern``), saved searches (``search``) and a saved map
(``map``) are stand-alone objects; dashboards embed Lens panels by value
(``embeddableConfig.attributes``, ``formBased`` datasource, one layer per panel) and
refer to the searches and the map by ``panelRefName``. ``typeMigrationVersion`` is the
one Kibana's own sample data ships, so Kibana migrates the objects on import.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pipeline.config import REPO_ROOT

BUNDLE = REPO_ROOT / "deploy" / "kibana" / "wirestream.ndjson"
PANEL_VERSION = "8.11.0"
CORE_MIGRATION = "8.8.0"
TYPE_MIGRATION = {
    "index-pattern": "7.11.0",
    "search": "7.9.3",
    "map": "8.4.0",
    "dashboard": "8.7.0",
}
ENTITY_FIELDS = ("entities.people", "entities.organizations", "entities.places")
DEFAULT_ENTITY = "saltmouth"  # named in the sample site; `--entity` picks another


@dataclass(frozen=True)
class Bucket:
    """A bucket column: a date histogram of a date field, or the top values of a keyword."""

    field: str
    label: str
    size: int = 10  # terms only

    @property
    def is_date(self) -> bool:
        return self.field in ("published_at", "fetched_at", "@timestamp", "first_seen")


@dataclass(frozen=True)
class Panel:
    """One dashboard panel; ``chart`` decides the Lens visualisation (or map/search)."""

    title: str
    view: Literal["articles", "stats", "stories"]
    chart: Literal["bar_stacked", "line", "bar_horizontal", "donut", "table", "map", "search"]
    buckets: tuple[Bucket, ...] = ()
    metric: Literal["count", "sum", "max"] = "count"  # of ``metric_of`` unless count
    metric_of: str = "count"  # the stats documents' ``count``, a story's ``source_count``
    where: tuple[tuple[str, str], ...] = ()  # field == value filters
    search: str = ""  # chart == "search": the saved search's key in SEARCHES
    allow_empty: str = ""  # why no buckets is fine on healthy data (checked, not failed)
    metric_label: str = ""  # the metric column's label, when not the default
    width: int = 24
    height: int = 12

    @property
    def metric_field(self) -> str | None:
        return None if self.metric == "count" else self.metric_of

    @property
    def fields(self) -> list[str]:
        """Return every field the panel aggregates on."""
        found = [b.field for b in self.buckets] + [f for f, _ in self.where]
        return found + ([self.metric_field] if self.metric_field else [])


@dataclass(frozen=True)
class SavedSearch:
    """A Discover search: KQL query, columns, newest first."""

    title: str
    columns: tuple[str, ...]
    query: str = ""
    entity: bool = False  # the query is filled in with the chosen entity


@dataclass(frozen=True)
class Dashboard:
    title: str
    description: str
    panels: tuple[Panel, ...]
    time_from: str = "now-1y"


@dataclass
class Names:
    """What the objects point at; defaults match the default settings."""

    articles: str = "news"  # the alias
    stats: str = "news-stats"
    stories: str = "news-stories"
    entity: str = DEFAULT_ENTITY


VIEWS = {
    "articles": ("wirestream-news", "wirestream articles", "published_at"),
    "stats": ("wirestream-stats", "wirestream ingestion health", "@timestamp"),
    "stories": ("wirestream-stories", "wirestream stories", "first_seen"),
}
SEARCHES = {
    "latest": SavedSearch(
        "Latest articles", ("title", "source", "publisher", "language", "published_at")
    ),
    "entity": SavedSearch(
        "Articles mentioning an entity",
        ("title", "source", "entities.people", "entities.organizations", "entities.places"),
        entity=True,
    ),
}
WHEN = Bucket("published_at", "Published")
WINDOW = Bucket("@timestamp", "Window")
SOURCE, STAGE = Bucket("source", "Source"), Bucket("stage", "Stage", 5)
FEED, LANGUAGE = Bucket("publisher", "Feed"), Bucket("language", "Language", 20)
PEOPLE, ORGS = Bucket("entities.people", "Person"), Bucket("entities.organizations", "Organisation")
PLACES = Bucket("entities.places", "Place")
FIRST_SEEN, STORY_TITLE = Bucket("first_seen", "First seen"), Bucket("title.keyword", "Story")
STORY = Bucket("story_id", "Story id", 15)
DECLARED = Bucket("language_declared", "Declared language", 20)
MODEL = Bucket("entities_model", "Entity model", 5)
DAY = Bucket("@timestamp", "Day")
SOURCE_DAY = (("stage", "source_day"),)
DASHBOARDS = {
    "news-overview": Dashboard(
        "News overview",
        "What wirestream indexed: volume by source, languages, latest articles.",
        (
            Panel("Articles over time by source", "articles", "bar_stacked", (WHEN, SOURCE)),
            Panel("Top sources", "articles", "bar_horizontal", (SOURCE,)),
            Panel("Articles per feed", "articles", "bar_horizontal", (FEED,)),
            Panel("Languages", "articles", "donut", (LANGUAGE,)),
            Panel(
                "Detected language against the declared one",
                "articles",
                "table",
                (LANGUAGE, DECLARED),
                allow_empty="no article declares a language",
            ),
            Panel("Latest articles", "articles", "search", search="latest", width=48, height=15),
        ),
    ),
    "entities": Dashboard(
        "Entities",
        "Who and what the news mentions, and who is mentioned together.",
        (
            Panel("Top people over time", "articles", "bar_stacked", (WHEN, PEOPLE)),
            Panel("Top organisations over time", "articles", "bar_stacked", (WHEN, ORGS)),
            Panel("Top places over time", "articles", "bar_stacked", (WHEN, PLACES)),
            Panel(
                "People and organisations mentioned together",
                "articles",
                "table",
                (PEOPLE, Bucket(ORGS.field, ORGS.label, 5)),
            ),
            Panel("Top people by language", "articles", "table", (LANGUAGE, PEOPLE)),
            Panel("Entity model by language", "articles", "table", (LANGUAGE, MODEL)),
            Panel(
                "Languages without an entity model",
                "articles",
                "bar_horizontal",
                (LANGUAGE,),
                where=(("entities_skipped", "no_model"),),
                allow_empty="every article's language has a model",
            ),
            Panel(
                "Articles mentioning the chosen entity",
                "articles",
                "search",
                search="entity",
                width=48,
                height=15,
            ),
        ),
    ),
    "places": Dashboard(
        "Places",
        "Where the news happens: geocoded places mentioned in articles.",
        (
            Panel(
                "Places mentioned",
                "articles",
                "map",
                (Bucket("locations", "Location"),),
                width=48,
                height=20,
            ),
            Panel("Top countries", "articles", "bar_horizontal", (Bucket("countries", "Country"),)),
        ),
    ),
    "stories": Dashboard(
        "Stories",
        "Stories across outlets: the biggest by number of sources, a story's timeline and "
        "outlets (click a story id to filter every panel to it), and syndicated copies.",
        (
            Panel(
                "Biggest stories over time by number of sources",
                "stories",
                "bar_stacked",
                (FIRST_SEEN, STORY_TITLE),
                "max",
                "source_count",
            ),
            Panel(
                "Biggest stories: id, title, sources",
                "stories",
                "table",
                (STORY, Bucket(STORY_TITLE.field, STORY_TITLE.label, 1)),
                "max",
                "source_count",
            ),
            Panel("A story's timeline by outlet", "articles", "bar_stacked", (WHEN, SOURCE)),
            Panel("Outlets per story", "articles", "table", (STORY, SOURCE)),
            Panel(
                "Syndication: articles per original (its copies and itself)",
                "articles",
                "bar_horizontal",
                (Bucket("copy_group", "Original", 15),),
                width=48,
            ),
        ),
    ),
    "ingestion-health": Dashboard(
        "Ingestion health",
        "Items per pipeline stage and source, counted in fixed windows by the pipeline.",
        (
            Panel("Items per stage over time", "stats", "line", (WINDOW, STAGE), "sum"),
            Panel(
                "Indexed per source over time",
                "stats",
                "bar_stacked",
                (WINDOW, SOURCE),
                "sum",
                where=(("stage", "indexed"),),
            ),
            Panel("Stages per source", "stats", "table", (SOURCE, STAGE), "sum", width=48),
            Panel(
                "Failures by stage and reason",
                "stats",
                "bar_horizontal",
                (Bucket("reason", "Reason"), Bucket("failed_stage", "Failed stage", 5)),
                "sum",
                where=(("stage", "failed"),),
                allow_empty="no failures in this period",
            ),
        ),
        time_from="now-24h",
    ),
    "source-health": Dashboard(
        "Source health",
        "What each source yields per day (stage source_day, written by the stream): "
        "documents, walls, pages without an author, body length, and drift flags naming "
        "what changed and since when. `wirestream sources` prints the same as a table.",
        (
            Panel(
                "Flagged sources: what changed",
                "stats",
                "table",
                (SOURCE, Bucket("flag_details", "Flag")),
                where=SOURCE_DAY,
                metric_label="Day documents",
                allow_empty="no source drifted in this period",
                width=48,
            ),
            Panel(
                "Documents per source per day",
                "stats",
                "bar_stacked",
                (DAY, SOURCE),
                "sum",
                "documents",
                where=SOURCE_DAY,
                metric_label="Documents",
            ),
            Panel(
                "Walls per source (bot challenges, denials, consent, paywalls)",
                "stats",
                "bar_horizontal",
                (SOURCE,),
                "sum",
                "walls",
                where=SOURCE_DAY,
                metric_label="Walls",
                allow_empty="no walls in this period",
            ),
            Panel(
                "Articles without an author per source per day",
                "stats",
                "line",
                (DAY, SOURCE),
                "sum",
                "no_author",
                where=SOURCE_DAY,
                metric_label="Without an author",
            ),
            Panel(
                "Median words per source per day",
                "stats",
                "line",
                (DAY, SOURCE),
                "max",
                "median_words",
                where=SOURCE_DAY,
                metric_label="Median words",
            ),
            Panel(
                "Failures per source and reason",
                "stats",
                "table",
                (SOURCE, Bucket("reason", "Reason")),
                "sum",
                where=(("stage", "failed"),),
                metric_label="Failures",
                allow_empty="no failures in this period",
                width=48,
            ),
        ),
        time_from="now-7d",
    ),
}


def _id(*parts: str) -> str:
    """Return a stable UUID for a panel part, so regenerating gives identical objects."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "wirestream:" + ":".join(parts)))


def entity_query(entity: str) -> str:
    """Return the KQL that finds articles naming ``entity`` as a person, organisation or place."""
    value = json.dumps(entity)
    return " or ".join(f"{f} : {value}" for f in ENTITY_FIELDS)


def kql(where: tuple[tuple[str, str], ...]) -> str:
    return " and ".join(f"{f} : {json.dumps(v)}" for f, v in where)


def _saved_object(kind: str, oid: str, attributes: dict, references: list[dict]) -> dict:
    return {
        "type": kind,
        "id": oid,
        "attributes": attributes,
        "references": references,
        "coreMigrationVersion": CORE_MIGRATION,
        "typeMigrationVersion": TYPE_MIGRATION[kind],
        "managed": False,
    }


def _ref(name: str, kind: str, oid: str) -> dict:
    return {"name": name, "type": kind, "id": oid}


def data_view(key: str, names: Names) -> dict:
    """Return the data view (``index-pattern``) over the articles alias or the stats index."""
    oid, name, time_field = VIEWS[key]
    title = {"articles": names.articles, "stats": names.stats, "stories": names.stories}[key]
    attributes = {
        "title": title,
        "name": name,
        "timeFieldName": time_field,
        "fields": "[]",
        "fieldFormatMap": "{}",
        "fieldAttrs": "{}",
        "runtimeFieldMap": "{}",
        "sourceFilters": "[]",
        "typeMeta": "{}",
        "allowNoIndex": True,
    }
    return _saved_object("index-pattern", oid, attributes, [])


def saved_search(key: str, names: Names) -> dict:
    """Return a saved search over the articles data view, newest first."""
    spec = SEARCHES[key]
    query = entity_query(names.entity) if spec.entity else spec.query
    source = {
        "query": {"query": query, "language": "kuery"},
        "filter": [],
        "highlightAll": True,
        "version": True,
        "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index",
    }
    title = f"{spec.title}: {names.entity}" if spec.entity else spec.title
    attributes = {
        "title": title,
        "description": "",
        "columns": list(spec.columns),
        "sort": [["published_at", "desc"]],
        "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(source)},
    }
    references = [
        _ref("kibanaSavedObjectMeta.searchSourceJSON.index", "index-pattern", VIEWS["articles"][0])
    ]
    return _saved_object("search", f"wirestream-search-{key}", attributes, references)


def _lens_columns(panel: Panel, layer: str) -> tuple[dict[str, dict], list[str], str]:
    """Return (columns by id, bucket column ids, metric column id) of a panel's layer."""
    metric_id = _id(layer, "metric")
    if panel.metric != "count":
        metric: dict[str, Any] = {
            "label": panel.metric_label or ("Items" if panel.metric_of == "count" else "Sources"),
            "dataType": "number",
            "operationType": panel.metric,
            "sourceField": panel.metric_of,
            "isBucketed": False,
            "scale": "ratio",
            "params": {"emptyAsNull": True},
            "customLabel": True,
        }
    else:
        metric = {
            "label": panel.metric_label or "Articles",
            "dataType": "number",
            "operationType": "count",
            "sourceField": "___records___",
            "isBucketed": False,
            "scale": "ratio",
            "params": {"emptyAsNull": True},
            "customLabel": True,
        }
    columns: dict[str, dict[str, Any]] = {}
    bucket_ids: list[str] = []
    for bucket in panel.buckets:
        column_id = _id(layer, bucket.field)
        bucket_ids.append(column_id)
        if bucket.is_date:
            columns[column_id] = {
                "label": bucket.label,
                "dataType": "date",
                "operationType": "date_histogram",
                "sourceField": bucket.field,
                "isBucketed": True,
                "scale": "interval",
                "params": {"interval": "auto", "includeEmptyRows": True, "dropPartials": False},
                "customLabel": True,
            }
        else:
            columns[column_id] = {
                "label": bucket.label,
                "dataType": "string",
                "operationType": "terms",
                "sourceField": bucket.field,
                "isBucketed": True,
                "scale": "ordinal",
                "params": {
                    "size": bucket.size,
                    "orderBy": {"type": "column", "columnId": metric_id},
                    "orderDirection": "desc",
                    "otherBucket": False,
                    "missingBucket": False,
                    "parentFormat": {"id": "terms"},
                },
                "customLabel": True,
            }
    columns[metric_id] = metric
    return columns, bucket_ids, metric_id


def _lens_visualization(panel: Panel, layer: str, buckets: list[str], metric: str) -> dict:
    if panel.chart == "table":
        return {
            "layerId": layer,
            "layerType": "data",
            "columns": [{"columnId": c} for c in [*buckets, metric]],
        }
    if panel.chart == "donut":
        return {
            "shape": "donut",
            "layers": [
                {
                    "layerId": layer,
                    "layerType": "data",
                    "primaryGroups": buckets,
                    "metrics": [metric],
                    "numberDisplay": "percent",
                    "categoryDisplay": "default",
                    "legendDisplay": "default",
                }
            ],
        }
    xy_layer = {
        "layerId": layer,
        "layerType": "data",
        "seriesType": panel.chart,
        "xAccessor": buckets[0],
        "accessors": [metric],
    }
    if len(buckets) > 1:
        xy_layer["splitAccessor"] = buckets[1]
    return {
        "legend": {"isVisible": True, "position": "right"},
        "valueLabels": "hide",
        "preferredSeriesType": panel.chart,
        "layers": [xy_layer],
    }


LENS_TYPES = {"table": "lnsDatatable", "donut": "lnsPie"}


def lens_attributes(panel: Panel, dashboard_key: str) -> dict:
    """Return the by-value Lens attributes of a chart panel (one formBased layer)."""
    layer = _id(dashboard_key, panel.title)
    columns, buckets, metric = _lens_columns(panel, layer)
    return {
        "title": panel.title,
        "description": "",
        "visualizationType": LENS_TYPES.get(panel.chart, "lnsXY"),
        "type": "lens",
        "references": [
            _ref(f"indexpattern-datasource-layer-{layer}", "index-pattern", VIEWS[panel.view][0])
        ],
        "state": {
            "visualization": _lens_visualization(panel, layer, buckets, metric),
            "query": {"query": kql(panel.where), "language": "kuery"},
            "filters": [],
            "datasourceStates": {
                "formBased": {
                    "layers": {
                        layer: {
                            "columns": columns,
                            "columnOrder": [*buckets, metric],
                            "incompleteColumns": {},
                        }
                    }
                }
            },
            "internalReferences": [],
            "adHocDataViews": {},
        },
    }


def places_map(panel: Panel, names: Names) -> dict:
    """Return the saved map: a basemap and clusters of the articles' geo points."""
    layer = _id("map", panel.title)
    geo_field = panel.buckets[0].field
    layers = [
        {
            "id": _id("map", "basemap"),
            "type": "EMS_VECTOR_TILE",
            "label": None,
            "minZoom": 0,
            "maxZoom": 24,
            "alpha": 1,
            "visible": True,
            "style": {"type": "EMS_VECTOR_TILE"},
            "sourceDescriptor": {"type": "EMS_TMS", "isAutoSelect": True},
        },
        {
            "id": layer,
            "type": "GEOJSON_VECTOR",
            "label": panel.title,
            "minZoom": 0,
            "maxZoom": 24,
            "alpha": 0.75,
            "visible": True,
            "joins": [],
            "style": {"type": "VECTOR", "properties": {}, "isTimeAware": True},
            "sourceDescriptor": {
                "type": "ES_GEO_GRID",
                "id": _id("map", "source"),
                "geoField": geo_field,
                "requestType": "point",
                "resolution": "COARSE",
                "metrics": [{"type": "count"}],
                "applyGlobalQuery": True,
                "applyGlobalTime": True,
                "indexPatternRefName": "layer_1_source_index_pattern",
            },
        },
    ]
    state = {
        "zoom": 1.5,
        "center": {"lon": 0, "lat": 20},
        "timeFilters": {"from": "now-1y", "to": "now"},
        "refreshConfig": {"isPaused": True, "interval": 0},
        "query": {"query": "", "language": "kuery"},
        "filters": [],
        "settings": {"autoFitToDataBounds": True},
    }
    attributes = {
        "title": panel.title,
        "description": "Clusters of the places (geo points) mentioned in articles",
        "layerListJSON": json.dumps(layers),
        "mapStateJSON": json.dumps(state),
        "uiStateJSON": json.dumps({"isLayerTOCOpen": True, "openTOCDetails": []}),
    }
    references = [_ref("layer_1_source_index_pattern", "index-pattern", VIEWS[panel.view][0])]
    return _saved_object("map", "wirestream-map-places", attributes, references)


def _grid(panels: tuple[Panel, ...]) -> list[dict[str, int]]:
    """Return panel positions on Kibana's 48-column grid, filling rows left to right."""
    x = y = row_height = 0
    grid = []
    for panel in panels:
        if x + panel.width > 48:
            x, y, row_height = 0, y + row_height, 0
        grid.append({"x": x, "y": y, "w": panel.width, "h": panel.height})
        x, row_height = x + panel.width, max(row_height, panel.height)
    return grid


def dashboard(key: str, names: Names) -> dict:
    """Return a dashboard: Lens panels by value, searches and the map by reference."""
    spec = DASHBOARDS[key]
    panels, references = [], []
    for number, (panel, grid) in enumerate(
        zip(spec.panels, _grid(spec.panels), strict=True), start=1
    ):
        index = str(number)
        entry = {
            "version": PANEL_VERSION,
            "gridData": {**grid, "i": index},
            "panelIndex": index,
            "title": panel.title,
        }
        if panel.chart in ("search", "map"):
            target = (
                ("search", f"wirestream-search-{panel.search}")
                if panel.chart == "search"
                else ("map", "wirestream-map-places")
            )
            entry |= {
                "type": target[0],
                "embeddableConfig": {"enhancements": {}},
                "panelRefName": f"panel_{index}",
            }
            references.append(_ref(f"{index}:panel_{index}", *target))
        else:
            attributes = lens_attributes(panel, key)
            entry |= {
                "type": "lens",
                "embeddableConfig": {"attributes": attributes, "enhancements": {}},
            }
            references += [
                _ref(f"{index}:{r['name']}", r["type"], r["id"]) for r in attributes["references"]
            ]
        panels.append(entry)
    attributes = {
        "title": spec.title,
        "description": spec.description,
        "panelsJSON": json.dumps(panels),
        "optionsJSON": json.dumps(
            {
                "useMargins": True,
                "syncColors": False,
                "syncCursor": True,
                "syncTooltips": False,
                "hidePanelTitles": False,
            }
        ),
        "timeRestore": True,
        "timeFrom": spec.time_from,
        "timeTo": "now",
        "refreshInterval": {"pause": False, "value": 60000},
        "kibanaSavedObjectMeta": {
            "searchSourceJSON": json.dumps(
                {"query": {"query": "", "language": "kuery"}, "filter": []}
            )
        },
    }
    return _saved_object("dashboard", f"wirestream-dashboard-{key}", attributes, references)


def build_objects(names: Names | None = None) -> list[dict[str, Any]]:
    """Return every saved object of the bundle, in import order (referenced objects first)."""
    names = names or Names()
    (map_panel,) = [p for d in DASHBOARDS.values() for p in d.panels if p.chart == "map"]
    return [
        *(data_view(key, names) for key in VIEWS),
        *(saved_search(key, names) for key in SEARCHES),
        places_map(map_panel, names),
        *(dashboard(key, names) for key in DASHBOARDS),
    ]


def to_ndjson(objects: list[dict[str, Any]]) -> str:
    """Return the objects as import/export NDJSON: one object per line, keys sorted."""
    return "".join(json.dumps(o, sort_keys=True, ensure_ascii=False) + "\n" for o in objects)


def read_ndjson(path: Path) -> list[dict[str, Any]]:
    """Return the saved objects in an NDJSON file (blank lines ignored)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def import_objects(
    ndjson: str,
    kibana_url: str,
    *,
    username: str | None = None,
    password: str | None = None,
    api_key: str | None = None,
    space: str | None = None,
    ca_certs: str | None = None,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Post ``ndjson`` to Kibana's saved-objects import API (overwrite); return its answer."""
    import requests

    base = kibana_url.rstrip("/") + (f"/s/{space}" if space else "")
    headers = {"kbn-xsrf": "wirestream"}
    if api_key:
        headers["Authorization"] = f"ApiKey {api_key}"
    response = requests.post(
        f"{base}/api/saved_objects/_import",
        params={"overwrite": "true"},
        headers=headers,
        files={"file": ("wirestream.ndjson", ndjson.encode("utf-8"), "application/ndjson")},
        auth=(username, password or "") if username and not api_key else None,
        verify=ca_certs or True,
        timeout=timeout,
    )
    if response.status_code >= 400:
        raise RuntimeError(f"Kibana answered HTTP {response.status_code}: {response.text[:500]}")
    return response.json()
