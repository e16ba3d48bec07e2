"""Profiles load, merge feeds files, and reject bad keys with a message naming them."""

import pytest

from pipeline.config import ConfigError, Settings, load_settings


def test_defaults_are_valid():
    settings = Settings()
    assert settings.elasticsearch.url == "http://127.0.0.1:9200"
    assert settings.fetch.allow_private_addresses is False


def test_profile_with_feeds_file(tmp_path):
    (tmp_path / "feeds.yaml").write_text(
        "feeds:\n  - {url: 'https://example.org/rss', name: ex, interval: 60, language: en}\n"
    )
    (tmp_path / "p.yaml").write_text("feeds_files: [feeds.yaml]\nelasticsearch: {batch_size: 7}\n")
    settings = load_settings(tmp_path / "p.yaml")
    assert [f.name for f in settings.feeds] == ["ex"]
    assert settings.feeds[0].interval == 60
    assert settings.elasticsearch.batch_size == 7


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("elasticsearch: {batchsize: 3}\n", "elasticsearch.batchsize"),
        ("feeds: [{url: 'ftp://x/y'}]\n", "feeds.0.url"),
        ("feeds: [{url: 'https://a/b', interval: -1}]\n", "feeds.0.interval"),
        ("feeds: [{url: 'https://a/b'}, {url: 'https://a/b'}]\n", "listed twice"),
        ("fetch: [1, 2]\n", "fetch"),
        ("elasticsearch: {url: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_profiles_name_the_key(tmp_path, text, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert needle in str(info.value)
    assert str(path) in str(info.value)


def test_missing_profile(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "nope.yaml")


def test_overrides_ignore_unset_flags():
    profile = Settings().with_overrides(elasticsearch={"api_key": "from-profile"})
    settings = profile.with_overrides(elasticsearch={"url": "https://es:9200", "api_key": None})
    assert settings.elasticsearch.url == "https://es:9200"
    assert settings.elasticsearch.api_key == "from-profile"  # an unset flag keeps the profile's


def test_shipped_profiles_are_valid():
    from pipeline.config import REPO_ROOT

    for path in sorted((REPO_ROOT / "configs").glob("*.yaml")):
        load_settings(path)
    assert load_settings(REPO_ROOT / "configs" / "local.yaml").feeds


def test_opensearch_refuses_an_api_key(tmp_path):
    profile = tmp_path / "p.yaml"
    profile.write_text("elasticsearch: {engine: opensearch, api_key: abc}\n")
    with pytest.raises(ConfigError, match="api_key is Elasticsearch's"):
        load_settings(profile)


def test_a_profile_with_its_own_prefix_gets_its_own_alias(tmp_path):
    """Index names follow one rule: a second dataset never joins the first one's alias
    (with `index_prefix: x` and no alias it used to land in `news`, every dashboard's)."""
    assert Settings().elasticsearch.alias == "news"
    profile = tmp_path / "profile.yaml"
    profile.write_text("elasticsearch: {index_prefix: archive}\n")
    settings = load_settings(profile)
    assert settings.elasticsearch.alias == "archive"
    moved = settings.with_overrides(elasticsearch={"index_prefix": "trial", "url": None})
    assert (moved.elasticsearch.alias, moved.elasticsearch.url) == (
        "trial",
        "http://127.0.0.1:9200",
    )
    profile.write_text("elasticsearch: {index_prefix: archive, alias: everything}\n")
    named = load_settings(profile).with_overrides(elasticsearch={"index_prefix": "trial"})
    assert named.elasticsearch.alias == "everything"  # set by the user: kept
