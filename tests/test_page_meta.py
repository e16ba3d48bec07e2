"""What pages declare about themselves (JSON-LD, <meta>), and titles and bylines cleaned."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from transforms.bylines import clean_authors, clean_byline, clean_title
from transforms.extract import parse_page
from transforms.page_meta import Author, read_page_meta


def _page(head: str = "", body: str = "<p>Text.</p>", lang: str = "en") -> str:
    return f'<html lang="{lang}"><head>{head}</head><body>{body}</body></html>'


def _ld(data) -> str:
    return f'<script type="application/ld+json">{json.dumps(data)}</script>'


def test_json_ld_article_in_a_graph_with_author_references():
    graph = {
        "@context": "https://schema.org",
        "@graph": [
            {"@type": "WebSite", "@id": "https://x.example/#site", "name": "X News"},
            {"@type": "Person", "@id": "https://x.example/#p1", "name": "Enkosi Selane"},
            {
                "@type": "NewsArticle",
                "headline": "Storms escalate &#8216;fast&#8217;",
                "author": [{"@id": "https://x.example/#p1"}],
                "datePublished": "2025-11-28T13:26:06+02:00",
                "inLanguage": "en-ZA",
                "publisher": {"@type": "Organization", "name": "The Citizen"},
            },
        ],
    }
    meta = read_page_meta(parse_page(_page(_ld(graph) + "<title>Storms | The Citizen</title>")))
    assert meta.headline == "Storms escalate ‘fast’"
    assert meta.authors == [Author("Enkosi Selane")]
    assert meta.published_at == datetime(2025, 11, 28, 11, 26, 6, tzinfo=timezone.utc)
    assert meta.language == "en-ZA"
    assert meta.site_names == ["The Citizen"]
    assert meta.html_title == "Storms | The Citizen"


def test_json_ld_list_organisation_author_and_byline_key():
    items = [
        {"@type": "BreadcrumbList", "itemListElement": []},
        {
            "@type": ["ReportageNewsArticle"],
            "headline": "Nepal says 'no proof'",
            "author": [
                {"@type": "NewsMediaOrganization", "name": "BBC News"},
                {"@type": "Person", "byline": "Gopal Sharma"},
            ],
        },
    ]
    meta = read_page_meta(parse_page(_page(_ld(items))))
    assert meta.authors == [Author("BBC News", organization=True), Author("Gopal Sharma")]


def test_meta_tags_when_there_is_no_json_ld():
    head = (
        '<meta property="og:title" content="Far-right protesters &#039;throw stones&#039;">'
        '<meta property="og:site_name" content="Mirror">'
        '<meta name="author" content="Lucy Thornton">'
        '<meta property="article:author" content="https://www.facebook.com/mirror">'
        '<meta property="article:published_time" content="2024-08-04T13:23:00Z">'
    )
    meta = read_page_meta(parse_page(_page(head)))
    assert meta.headline == ""
    assert meta.meta_title == "Far-right protesters 'throw stones'"
    assert meta.authors == [Author("Lucy Thornton")]  # a profile URL is not a name
    assert meta.published_at == datetime(2024, 8, 4, 13, 23, tzinfo=timezone.utc)
    assert meta.site_names == ["Mirror"] and meta.language == "en"


def test_broken_json_ld_loses_nothing_else():
    head = '<script type="application/ld+json">{"headline": </script>'
    head += '<meta name="author" content="A B">'
    meta = read_page_meta(parse_page(_page(head)))
    assert meta.authors == [Author("A B")] and meta.headline == ""


@pytest.mark.parametrize(
    ("title", "sites", "domain", "expected"),
    [
        ("Toll rises | The Guardian", ["The Guardian"], "theguardian.com", "Toll rises"),
        ("BBC News - Budget explained", [], "bbc.co.uk", "Budget explained"),
        ("Resort reopens | Canada.Com", ["Canada.com"], "o.canada.com", "Resort reopens"),
        ("Headline - Politics - Los Angeles Times", ["Los Angeles Times"], "latimes.com",
         "Headline - Politics"),
        ("Far-right protesters clash", ["Mirror"], "mirror.co.uk", "Far-right protesters clash"),
        ("Wine Guy: 3 rosés", ["The Province"], "theprovince.com", "Wine Guy: 3 rosés"),
        ("Reuters", ["Reuters"], "reuters.com", "Reuters"),  # never emptied
        ("Mother of All * WorldTruth.Tv * by Eddie", [], "worldtruth.tv", "Mother of All"),
    ],
)  # fmt: skip
def test_titles_lose_the_sites_name(title, sites, domain, expected):
    assert clean_title(title, sites, domain) == expected


@pytest.mark.parametrize(
    ("byline", "expected"),
    [
        ("By Jane Doe and John Roe", ["Jane Doe", "John Roe"]),
        ("Jane Doe, Senior Reporter", ["Jane Doe"]),
        ("By JANE DOE | Updated March 3, 2024 10:15 am", ["JANE DOE"]),
        ("Jane Doe jane.doe@paper.example", ["Jane Doe"]),
        (
            "Mamokete Modiba, Claire Benit-Gbaffou, Sarah Charlton and Tanya Zack",
            ["Mamokete Modiba", "Claire Benit-Gbaffou", "Sarah Charlton", "Tanya Zack"],
        ),
        ("Guardian staff reporter", ["Guardian staff reporter"]),
        ("Fouzia Van Der Fort", ["Fouzia Van Der Fort"]),
        ("", []),
        ("Ashifa Kassam in Stanstead, Quebec", ["Ashifa Kassam"]),  # where it was filed from
        ("David Smith in Washington and Tom McCarthy in New York", ["David Smith", "Tom McCarthy"]),
        ("(Image: Getty Images)", []),  # credits and placeholders name nobody
        ("No Author", []),
    ],
)
def test_bylines_become_names(byline, expected):
    assert clean_byline(byline) == expected


def test_organisations_stay_whole_and_names_are_distinct():
    authors = [Author("Associated Press, Reuters", organization=True), Author("By Ann Lee"),
               Author("ann lee")]  # fmt: skip
    assert clean_authors(authors) == ["Associated Press, Reuters", "Ann Lee"]


def test_the_title_shown_as_the_heading_wins():
    from transforms.extract import choose_title

    head = (
        '<meta property="og:title" content="16-0! British players sweep the day">'
        + _ld({"@type": "NewsArticle", "headline": "US Open 2023 results: six British wins"})
        + "<title>US Open 2023 results | iNews</title>"
    )
    page = _page(head, "<h1>US Open 2023 results: six British wins</h1><p>Text.</p>")
    meta = read_page_meta(parse_page(page))
    assert meta.headings == ["US Open 2023 results: six British wins"]
    assert choose_title(meta, "", None, "inews.co.uk") == "US Open 2023 results: six British wins"
    meta.headings = []  # no heading to go by: og:title first (TITLE_SOURCES)
    assert choose_title(meta, "", None, "inews.co.uk") == "16-0! British players sweep the day"
