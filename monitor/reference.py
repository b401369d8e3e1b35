"""Where the shipped reference data lives (``data/reference``) and small readers for it."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import duckdb

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def reference_dir() -> Path:
    """``data/reference`` of the project, or ``MONITOR_REFERENCE_DIR`` when set."""
    override = os.environ.get("MONITOR_REFERENCE_DIR")
    path = Path(override) if override else PROJECT_ROOT / "data" / "reference"
    if not path.is_dir():
        raise FileNotFoundError(
            f"reference data folder {path} is missing; run from a checkout of procurement-monitor "
            "or set MONITOR_REFERENCE_DIR"
        )
    return path


@cache
def regions_csv() -> Path:
    """CSV of region spellings (alias) and the canonical ProZorro name (region) they stand for."""
    return reference_dir() / "regions.csv"


def install_region_aliases(con: duckdb.DuckDBPyConnection) -> None:
    """The region spellings of data/reference/regions.csv (``pm_region_alias``, keyed by ``pm_region_key``)
    on this connection: for the mappings, and for the migrations that canonicalize stored regions."""
    con.execute("CREATE OR REPLACE TEMP MACRO pm_region_key(x) AS lower(regexp_replace(trim(x), '\\s+', ' ', 'g'))")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE pm_region_alias AS "
        "SELECT DISTINCT pm_region_key(alias) AS alias_key, region "
        "FROM read_csv(?, header = true, all_varchar = true)",
        [str(regions_csv())],
    )
