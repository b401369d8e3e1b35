"""``monitor export``: evidence for advocacy, the flags and the rows behind them, with a manifest."""

from __future__ import annotations

from pathlib import Path

import click
import duckdb
import structlog

from monitor.cli import BadInput, pass_app
from monitor.export import FORMATS, FilterError, OutputError, make_filters, run_export
from monitor.export.selection import table_queries
from monitor.logs import show_progress

log = structlog.get_logger(__name__)

HELP = """Export flags and the rows behind them as Parquet, CSV or Excel, with manifest.json.

\b
Files: flags, processes, lots, items, bids, awards, contracts, contract_items, contract_changes,
complaints, bid_documents, plans, organizations, classifications, plan_classifications (.parquet or
.csv; xlsx: one workbook
export.xlsx, a sheet per table), raw_records.jsonl with --raw, and manifest.json (filters, command
line, row counts, sha256 of every file, schema version, source APIs, export time, latest
dateModified, clock, tool version).

\b
Rows behind a flag: its process (and those its evidence names by ocid or tender id, and the tenders
made from a flagged plan) with all their lots, items, bids, awards, contracts, changes and
classifications; its plan and the plans of those processes; the organizations they name.

\b
Filters combine with AND; a repeated option matches any of its values. A flag's region, buyer and
categories are those of its process (via ocid), else of its plan (plan subjects), else its subject
(a region; a buyer or procuring entity, the buyer of a buyer-tenderer pair), else its evidence; the
flags file shows the values used (region, buyer_id, procurement_date). --since/--until are
inclusive UTC dates (or date-times): by default they select flags whose process or plan was
published in the period, and flags about a buyer, tenderer or region that were open at some
moment of it; --dates flagged applies that last rule to every flag (raised before the period
ended, not resolved before it began).

\b
The bundle is written beside DIR and moved into place only when complete: a failed export leaves
nothing. An existing non-empty DIR is refused; --force replaces an earlier export there.

\b
Examples:
  monitor export --format xlsx --out exports/lviv-2026 --region "Львівська область" --since 2026-01-01
  monitor export --format csv --out exports/open-social --kind opportunity --category social --open-only
  monitor export --format parquet --out exports/r018 --rule cardinal-r018-single-bid --raw
"""


def _command_line(ctx: click.Context, db_path: Path) -> list[str]:
    """The command that reproduces this export: the database it read (as --db, also when MONITOR_DB or
    the config chose it), the config as given, then every export option."""
    root = ctx.find_root().params
    line = ["monitor", "--db", str(root.get("db") or db_path)]
    if root.get("config"):
        line += ["--config", root["config"]]
    line.append("export")
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or not param.expose_value:
            continue
        value = ctx.params.get(param.name)
        flag = param.opts[0]
        if param.is_flag:
            if value:
                line.append(flag)
        elif param.multiple:
            for item in value or ():
                line += [flag, str(item)]
        elif value is not None and not (param.name == "dates" and value == "procurement"):
            line += [flag, str(value)]
    return line


@click.command(help=HELP, short_help="Export flags and their rows (Parquet, CSV, Excel) with a manifest.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True, help="File format.")
@click.option("--out", "out", required=True, metavar="DIR", type=click.Path(path_type=Path),
              help="Output folder (created; refused when it exists and is not empty, unless --force).")
@click.option("--rule", "rules", multiple=True, metavar="ID", help="Only flags of this rule (repeatable).")
@click.option("--kind", type=click.Choice(("anomaly", "opportunity")), help="Only anomalies or only opportunities.")
@click.option("--category", "categories", multiple=True, metavar="C",
              help="Only flags whose process (or plan) is classified C or a sub-category of C, e.g. health, "
                   "programme.hiv (repeatable).")
@click.option("--region", "regions", multiple=True, metavar="R",
              help="Only flags in region R: a ProZorro name ('Львівська область', 'м. Київ'), another spelling "
                   "from data/reference/regions.csv, an English name or an ISO code (UA-46) (repeatable).")
@click.option("--buyer", "buyers", multiple=True, metavar="ID_OR_EDRPOU",
              help="Only flags of this buyer: an organization id (UA-EDR-01994000) or a bare EDRPOU code; "
                   "the buyer or the procuring entity of the process matches (repeatable).")
@click.option("--since", metavar="DATE", help="Period start, inclusive (ISO date or date-time; UTC unless it has an offset).")
@click.option("--until", metavar="DATE", help="Period end, inclusive (a date means the whole day).")
@click.option("--dates", type=click.Choice(("procurement", "flagged")), default="procurement", show_default=True,
              help="What --since/--until look at: when the process or plan was published, or when the flag was open.")
@click.option("--open-only", is_flag=True, help="Only flags still open (not resolved).")
@click.option("--raw", is_flag=True, help="Add raw_records.jsonl: the verbatim JSON of the records behind the rows.")
@click.option("--force", is_flag=True, help="Replace an earlier export in DIR.")
@pass_app
@click.pass_context
def export(ctx: click.Context, app, fmt: str, out: Path, rules, kind, categories, regions, buyers, since, until,
           dates, open_only: bool, raw: bool, force: bool) -> None:
    given = {"rule": list(rules), "kind": kind, "category": list(categories), "region": list(regions),
             "buyer": list(buyers), "since": since, "until": until, "dates": dates, "open_only": open_only}
    try:
        filters = make_filters(rules=rules, kind=kind, categories=categories, regions=regions, buyers=buyers,
                               since=since, until=until, dates=dates, open_only=open_only)
    except FilterError as exc:
        raise BadInput(str(exc)) from exc
    progress, finish = _progress(fmt, raw)
    try:
        result = run_export(app.settings.db_path, out, fmt, filters, raw=raw, force=force, settings=app.settings,
                            command_line=_command_line(ctx, app.settings.db_path), filters_given=given, progress=progress)
    except (FilterError, OutputError) as exc:
        raise BadInput(str(exc)) from exc
    except (OSError, duckdb.Error) as exc:
        log.error("export failed", error=str(exc))
        raise click.ClickException(f"export failed, nothing was written to {out}: {exc}") from exc
    finally:
        finish()
    rows = result.rows
    related = ", ".join(f"{rows[t]} {t}" for t in ("processes", "contracts", "plans", "organizations") if t in rows)
    click.echo(f"exported {rows['flags']} flag(s) with {related} to {result.out_dir} ({fmt}) in {result.seconds:.1f} s; "
               f"see {result.out_dir / 'manifest.json'}")


def _progress(fmt: str, raw: bool):
    """A progress bar over the tables on a terminal; nothing otherwise."""
    if not show_progress():
        return None, lambda: None
    from rich.progress import Progress

    bar = Progress(transient=True)
    bar.start()
    task = bar.add_task(f"export {fmt}", total=len(table_queries()) + (1 if raw else 0))
    return (lambda name: bar.update(task, advance=1, description=f"export {fmt}: {name}")), bar.stop
