"""The weekly report: one self-contained HTML page, the same content in Markdown, and the flags as CSV.

``write_report(settings)`` is what ``monitor report``, the scheduler and ``monitor demo`` call. It only
reads the database (a read-only connection).
"""

from __future__ import annotations

import dataclasses
import os
from datetime import datetime, timezone
from pathlib import Path

import structlog

from monitor import __version__
from monitor.config import Settings
from monitor.report.data import collect
from monitor.report.meta import category_infos, rule_infos
from monitor.report.render import render_html, render_markdown
from monitor.report.weeks import Week, last_complete_week, parse_week, week_containing
from monitor.store import connect_read_only
from monitor.store.db import current_schema_version

log = structlog.get_logger(__name__)

__all__ = ["ReportResult", "Week", "default_out_dir", "last_complete_week", "parse_week", "week_containing",
           "write_report"]


@dataclasses.dataclass(frozen=True)
class ReportResult:
    """Where the report was written and what it counts (for the CLI, the scheduler and the demo)."""

    week: str
    out_dir: Path
    html: Path
    md: Path
    csv: Path
    counts: dict[str, int]


def default_out_dir(week: str) -> Path:
    return Path("data") / "reports" / week


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_report(settings: Settings, week: str | None = None, out_dir: Path | None = None) -> ReportResult:
    """Write report.html, report.md and flags.csv for ``week`` (default: the last complete ISO week
    before the clock, ``settings.as_of`` or now, Kyiv time) into ``out_dir`` (default data/reports/<week>/).

    Each file is written beside its target and renamed into place once all three are complete: a reader
    never sees half a file, and a failure leaves the earlier report as it was. flags.csv is written while
    the flags are read, so the report never holds every flag in memory.

    Raises ValueError for a malformed week and monitor.store.StoreError when the database is missing.
    """
    generated_at = datetime.now(timezone.utc)
    clock = settings.as_of or generated_at
    chosen = parse_week(week) if week else last_complete_week(clock)
    target = Path(out_dir) if out_dir else default_out_dir(chosen.label)
    paths = {name: target / name for name in ("report.html", "report.md", "flags.csv")}
    temporaries = {name: _temporary(path) for name, path in paths.items()}
    created = not target.exists()
    con = connect_read_only(settings.db_path)
    try:
        target.mkdir(parents=True, exist_ok=True)
        # the byte-order mark makes Excel read the CSV as UTF-8
        with temporaries["flags.csv"].open("w", encoding="utf-8-sig", newline="") as flags_csv:
            data = collect(
                con, week=chosen, clock=clock, clock_pinned=settings.as_of is not None, generated_at=generated_at,
                db_path=str(settings.db_path), schema_version=current_schema_version(con), version=__version__,
                rules=rule_infos(), categories=category_infos(), raw_config=settings.raw, flags_csv=flags_csv)
        for name, text in (("report.html", render_html(data)), ("report.md", render_markdown(data))):
            temporaries[name].write_text(text, encoding="utf-8", newline="")
        for name, temporary in temporaries.items():
            os.replace(temporary, paths[name])
    except BaseException:
        for temporary in temporaries.values():
            temporary.unlink(missing_ok=True)
        if created and target.is_dir() and not any(target.iterdir()):
            target.rmdir()  # a folder this run made, left empty
        raise
    finally:
        con.close()
    all_processes = data.categories[0]
    counts = {
        "processes_week": all_processes.processes_week,
        "processes_total": all_processes.processes_total,
        "flags_new": data.summary_total("new"),
        "flags_new_previous_week": data.summary_total("new_previous"),
        "flags_still_open": data.summary_total("still_open"),
        "flags_resolved": data.summary_total("resolved"),
        "flags_open": data.summary_total("open_at_end"),
        "opportunities_open": data.opportunity_count,
        "csv_rows": data.flag_count,
    }
    log.info("report written", week=chosen.label, out_dir=str(target), **counts)
    return ReportResult(week=chosen.label, out_dir=target, html=paths["report.html"], md=paths["report.md"],
                        csv=paths["flags.csv"], counts=counts)
