"""``monitor report [--week 2026-W47] [--out DIR]``: the weekly report (HTML, Markdown, CSV)."""

from __future__ import annotations

from pathlib import Path

import click

from monitor.cli import pass_app
from monitor.report import parse_week, write_report


def _week(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return parse_week(value).label
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.command()
@click.option("--week", metavar="YYYY-Www", callback=_week,
              help="ISO week to report, e.g. 2026-W47 [default: the last complete week before the clock, Kyiv time].")
@click.option("--out", "out_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write report.html, report.md and flags.csv into [default: data/reports/<week>/].")
@pass_app
def report(app, week: str | None, out_dir: Path | None) -> None:
    """Write the weekly report: a self-contained HTML page, the same in Markdown, and every flag as CSV.

    Reads the database only. The clock is MONITOR_AS_OF / [flags] as_of when set, else now.
    """
    result = write_report(app.settings, week, out_dir)
    counts = result.counts
    click.echo(f"report {result.week}: {counts['processes_week']:,} process(es) ingested, {counts['flags_new']:,} new "
               f"flag(s) ({counts['flags_new_previous_week']:,} the week before), {counts['flags_open']:,} open, "
               f"{counts['flags_resolved']:,} resolved, {counts['opportunities_open']:,} open opportunity(ies)")
    for path in (result.html, result.md, result.csv):
        click.echo(f"  {path}")
