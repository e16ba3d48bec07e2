"""Where wirestream's own files are, and where it keeps what it builds or downloads once
(gazetteer, runners, services)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

SYSTEM_CACHE = Path("/var/cache/wirestream")
REPO_ROOT = Path(__file__).resolve().parents[1]  # configs/, deploy/ (what setup.py ships)


def cache_dir() -> Path:
    """``$WIRESTREAM_CACHE``, else ``~/.cache/wirestream``.

    As root with a private home (``/root`` is 0700) the Elasticsearch user could not read
    the install, so root defaults to ``/var/cache/wirestream`` instead.
    """
    env = os.environ.get("WIRESTREAM_CACHE")
    if env:
        return Path(env).expanduser().absolute()
    home = Path.home()
    if os.geteuid() == 0 and not home.stat().st_mode & stat.S_IXOTH:
        return SYSTEM_CACHE
    return home / ".cache" / "wirestream"
