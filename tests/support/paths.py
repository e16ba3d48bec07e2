"""Where the tests find ``../shared`` and the local Elasticsearch node."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.config import REPO_ROOT

SHARED = Path(os.environ.get("WIRESTREAM_SHARED", REPO_ROOT.parent / "shared"))
ES_URL = os.environ.get("WIRESTREAM_ES_URL", "http://127.0.0.1:9200")
OPENSEARCH_URL = os.environ.get("WIRESTREAM_OPENSEARCH_URL", "http://127.0.0.1:9201")
