"""The Hub fixtures live in hub_fixtures.py so that tests/qt can use them too."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from hub_fixtures import (  # noqa: F401
    build_cache_repo,
    evil_zip_bytes,
    fake_hub,
    held_hub,
    hub,
    hub_repos,
    legacy_bin_dir,
)
