"""Evidence export: the selected flags, the rows behind them, optionally the raw records, and a manifest.

``run_export`` writes a bundle into a temporary directory beside the target (same filesystem) and
renames it into place only when every file is complete, so a failed or interrupted export leaves
no output directory and no partial files. The database is opened read-only.

Files (``<ext>`` = parquet or csv; with xlsx one workbook ``export.xlsx`` with a sheet per table):
flags, processes, lots, items, bids, awards, contracts, contract_items, contract_changes, complaints,
bid_documents, plans, organizations, classifications, plan_classifications; ``raw_records.jsonl`` with ``raw``; and
``manifest.json`` (filters, command line, row counts, sha256 and size of every file, schema
version, source API URLs, export time, latest dateModified, clock, tool version).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import structlog

from monitor import __version__
from monitor.export import writers
from monitor.export.selection import (
    LATEST_MODIFIED,
    RAW_QUERY,
    FilterError,
    Filters,
    make_filters,
    resolve,
    select,
    table_queries,
    utc_iso,
)
from monitor.store.db import connect_read_only, current_schema_version

log = structlog.get_logger(__name__)

FORMATS = ("parquet", "csv", "xlsx")
MANIFEST = "manifest.json"
XLSX_FILE = "export.xlsx"
RAW_FILE = "raw_records.jsonl"
MANIFEST_TOOL = "procurement-monitor export"

__all__ = ["FORMATS", "ExportResult", "FilterError", "Filters", "OutputError", "make_filters", "run_export"]


class OutputError(ValueError):
    """The output directory cannot be used (exists and is not empty, is a file, is unsafe to replace)."""


@dataclasses.dataclass
class ExportResult:
    out_dir: Path
    manifest: dict[str, Any]
    seconds: float

    @property
    def rows(self) -> dict[str, int]:
        return {t["table"]: t["rows"] for t in self.manifest["tables"]}


# -- the output directory ------------------------------------------------------------------------


def _is_bundle(path: Path) -> bool:
    try:
        return json.loads((path / MANIFEST).read_text(encoding="utf-8")).get("tool") == MANIFEST_TOOL
    except (OSError, ValueError, AttributeError):
        return False


def check_output(out_dir: Path, *, force: bool, db_path: Path | None = None) -> None:
    """Refuse an output that is a file, a non-empty directory (without force), or one force must not delete."""
    if not out_dir.exists() and not out_dir.is_symlink():
        return
    if not out_dir.is_dir() or out_dir.is_symlink():
        raise OutputError(f"{out_dir} exists and is not a directory; choose another --out")
    if not any(out_dir.iterdir()):
        return
    if not force:
        raise OutputError(f"{out_dir} exists and is not empty; choose another --out, or add --force to replace "
                          "an earlier export there")
    resolved = out_dir.resolve()
    protected = {Path("/"), Path.home().resolve(), Path.cwd().resolve(), *Path.cwd().resolve().parents}
    if resolved in protected or (db_path is not None and db_path.resolve().is_relative_to(resolved)):
        raise OutputError(f"--force will not replace {out_dir}: it holds the working directory, the database or "
                          "your home; choose another --out")
    if not _is_bundle(out_dir):
        raise OutputError(f"--force replaces only an earlier export (a folder with its {MANIFEST}); {out_dir} is "
                          "not one, remove it yourself or choose another --out")


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where that is not available."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return result == 0


def _move_into_place(staging: Path, out_dir: Path) -> None:
    if out_dir.is_dir() and any(out_dir.iterdir()):
        # --force (checked before): swap the new bundle in, then delete the old one
        if _exchange(staging, out_dir):
            shutil.rmtree(staging)
            return
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".old", dir=out_dir.parent))
        os.rename(out_dir, old / "bundle")
        os.rename(staging, out_dir)
        shutil.rmtree(old)
        return
    if out_dir.is_dir():
        out_dir.rmdir()
    os.rename(staging, out_dir)


# -- manifest ------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _sources(con, settings) -> dict[str, Any]:
    """The sources of the exported rows, with the API each was read from where the config says."""
    present = [row[0] for row in con.execute(
        "SELECT DISTINCT source FROM (SELECT source FROM processes WHERE ocid IN (SELECT ocid FROM x_ocids) "
        "UNION ALL SELECT source FROM plans WHERE plan_id IN (SELECT plan_id FROM x_plans)) ORDER BY 1").fetchall()]
    prozorro_url, publishers = None, []
    try:
        from monitor.sources import source_config

        config = source_config(settings) if settings is not None else None
        if config is not None:
            prozorro_url = config.prozorro_api_url
            publishers = [{"name": p["name"], "url": p["url"], "package_type": p.get("package_type")}
                          for p in config.publishers]
    except Exception as exc:  # a broken config must not stop an export; say so
        log.warning("source configuration unreadable for the manifest", error=str(exc))
    if prozorro_url is None:
        from connectors.prozorro import DEFAULT_API_URL

        prozorro_url = DEFAULT_API_URL
    by_name = {p["name"]: p for p in publishers}
    in_export = {}
    for source in present:
        if source == "prozorro":
            in_export[source] = {"api_url": prozorro_url, "web": "https://prozorro.gov.ua/tender/<tender_public_id>"}
        elif source in by_name:
            in_export[source] = {"api_url": by_name[source]["url"]}
        else:
            in_export[source] = {"api_url": None, "note": "loaded from files (monitor load); no API configured"}
    return {"in_export": in_export, "prozorro_api_url": prozorro_url, "ocds_publishers": publishers}


# -- the export ----------------------------------------------------------------------------------


def run_export(db_path: Path, out_dir: Path, fmt: str, filters: Filters, *, raw: bool = False,
               force: bool = False, settings=None, command_line: list[str] | None = None,
               filters_given: dict[str, Any] | None = None,
               progress: Callable[[str], None] | None = None) -> ExportResult:
    """Export the flags chosen by ``filters`` and the rows behind them into ``out_dir``.

    Raises FilterError (a filter value the database does not know), OutputError (``out_dir`` is
    not usable), or whatever failed while writing; in every case nothing is left behind.
    """
    if fmt not in FORMATS:
        raise FilterError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    started = time.monotonic()
    out_dir = Path(out_dir)
    check_output(out_dir, force=force, db_path=Path(db_path))
    con = connect_read_only(db_path, getattr(settings, "memory_limit", None), getattr(settings, "threads", None))
    staging: Path | None = None
    made_parents: list[Path] = []
    try:
        resolved, read_as = resolve(con, filters)
        parent = out_dir.absolute().parent
        missing = [p for p in [parent, *parent.parents] if not p.exists()]
        parent.mkdir(parents=True, exist_ok=True)
        made_parents = missing  # deepest first, removed again if the export fails
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=parent))
        body = _write_bundle(con, staging, fmt, resolved, raw=raw, settings=settings, progress=progress)
        manifest = {
            "tool": body.pop("tool"), "tool_version": body.pop("tool_version"), "format": body.pop("format"),
            "exported_at": body.pop("exported_at"),
            "command_line": shlex.join(str(a) for a in command_line) if command_line else None,
            "filters": {**resolved.as_dict(), "raw": raw},
            "filters_given": filters_given or {},
            "filters_read_as": read_as,
            "database": {"path": str(Path(db_path).absolute()), "schema_version": current_schema_version(con)},
            **body,
            "seconds": round(time.monotonic() - started, 2),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        _move_into_place(staging, out_dir)
        staging = None
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        for directory in made_parents:
            try:
                directory.rmdir()
            except OSError:
                pass
        raise
    finally:
        con.close()
    seconds = time.monotonic() - started
    log.info("export written", out=str(out_dir), format=fmt, flags=manifest["tables"][0]["rows"], seconds=round(seconds, 2))
    return ExportResult(out_dir, manifest, seconds)


def _write_bundle(con, staging: Path, fmt: str, filters: Filters, *, raw: bool, settings,
                  progress: Callable[[str], None] | None) -> dict[str, Any]:
    exported_at = datetime.now(timezone.utc)
    select(con, filters, raw=raw)
    tables = table_queries()
    table_rows: list[dict[str, Any]] = []
    notes: list[str] = []
    truncated: list[dict[str, Any]] = []
    if fmt == "xlsx":
        result = writers.write_xlsx(con, tables, staging / XLSX_FILE, progress=progress)
        for table, _, _ in tables:
            sheets = result.split.get(table, [table])
            table_rows.append({"table": table, "file": XLSX_FILE, "sheets": sheets,
                               "rows": sum(result.rows[s] for s in sheets)})
        truncated = result.truncated
        if result.split:
            notes.append("tables over Excel's 1,048,575 data rows per sheet continue on sheets named 'table (2)'...: "
                         + ", ".join(f"{t}: {', '.join(s)}" for t, s in result.split.items()))
        if truncated:
            notes.append(f"{sum(t['cells'] for t in truncated)} cell(s) longer than Excel's 32,767 characters were cut, "
                         f"ending with the marker {writers.TRUNCATION_MARKER.strip()!r}; see truncated_cells")
    else:
        write = writers.write_parquet if fmt == "parquet" else writers.write_csv
        for table, query, order in tables:
            name = f"{table}.{fmt}"
            rows = write(con, f"{query} ORDER BY {order}", staging / name)
            table_rows.append({"table": table, "file": name, "rows": rows})
            if progress:
                progress(table)
    if raw:
        rows = writers.copy_to(con, RAW_QUERY, staging / RAW_FILE, "FORMAT json")
        table_rows.append({"table": "raw_records", "file": RAW_FILE, "rows": rows})
        if progress:
            progress("raw_records")
    latest = con.execute(LATEST_MODIFIED).fetchall()[0][0]
    if raw:
        raw_latest = con.execute("SELECT max(date_modified) FROM (" + RAW_QUERY + ")").fetchall()[0][0]
        latest = max([d for d in (latest, raw_latest) if d is not None], default=None)
    evaluated = con.execute("SELECT max(evaluated_at) FROM rule_runs").fetchall()[0][0]
    files = sorted(p.name for p in staging.iterdir())
    with ThreadPoolExecutor(max_workers=min(4, max(1, len(files)))) as pool:
        digests = dict(zip(files, pool.map(lambda n: _sha256(staging / n), files)))
    rows_by_file: dict[str, Any] = {entry["file"]: entry["rows"] for entry in table_rows}
    if fmt == "xlsx":
        rows_by_file[XLSX_FILE] = dict(result.rows)   # rows per sheet
    as_of = getattr(settings, "as_of", None)
    return {
        "tool": MANIFEST_TOOL,
        "tool_version": __version__,
        "format": fmt,
        "exported_at": utc_iso(exported_at),
        "as_of": utc_iso(as_of),
        "as_of_note": ("the clock the flag rules read, pinned by --as-of / MONITOR_AS_OF / [flags] as_of"
                       if as_of else "not pinned: the flag rules read the time of each run"),
        "flags_last_evaluated_at": utc_iso(evaluated),
        "latest_date_modified": utc_iso(latest),
        "tables": table_rows,
        "files": [{"name": name, "bytes": (staging / name).stat().st_size, "sha256": digests[name],
                   "rows": rows_by_file.get(name)} for name in files],
        "truncated_cells": truncated,
        "notes": notes + _format_notes(fmt),
        "sources": _sources(con, settings),
    }


def _format_notes(fmt: str) -> list[str]:
    notes = ["times are UTC",
             ("money is in the currency of the column beside it (value_currency...); never sum across "
              "currencies")]
    if fmt in ("csv", "xlsx"):
        notes.append("text cells starting with =, +, -, @, a tab or a carriage return have a leading apostrophe "
                     "added so spreadsheets show them as text; lists, structs and JSON evidence are JSON text")
    if fmt == "csv":
        notes.append("UTF-8 with a byte-order mark, comma-separated; Excel with a semicolon locale: use "
                     "Data > From Text/CSV, or the xlsx export")
    return notes
