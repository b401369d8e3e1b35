"""``monitor demo``: the whole pipeline, offline, on the shipped sample.

A loopback replay server serves the sample world (``monitor.demo_world``) in the shape of the
ProZorro API; the real nightly run ingests it, classifies and flags; the OCDS part of the sample
is loaded from files; then the weekly report and an evidence export are written and the top
findings printed. Each step is the real command, run in this process with the demo's settings
(``data/sample/demo.toml``). A second run reuses the database: the ingest resumes from its cursors
and finds nothing new.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path

import click
import structlog

from monitor.cli import EXIT_OK, pass_app
from monitor.logs import terminal_safe, verbosity
from monitor.demo_world import SAMPLE_DIR, SNAPSHOT_WEEK, build_world
from monitor.store.db import connect_read_only
from monitor.testing.replay_server import ReplayServer

log = structlog.get_logger(__name__)
DEMO_CONFIG = SAMPLE_DIR / "demo.toml"
DEFAULT_OUT = Path("data/demo")


@contextmanager
def _environment(**values: str):
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _step(title: str, argv: list[str]) -> None:
    from monitor.cli import main

    if verbosity() >= 0:
        click.secho(f"==> {title}", bold=True, err=True)
    started = time.monotonic()
    code = main(argv)
    if code != EXIT_OK:
        raise click.ClickException(f"demo step '{title}' failed with exit code {code}: monitor {' '.join(argv)}")
    log.info("demo step finished", step=title, seconds=round(time.monotonic() - started, 1))


def _findings(db_path: Path) -> str:
    """One opportunity per rule (open deadlines first, then the largest) and the open flags per rule."""
    con = connect_read_only(db_path)
    try:
        opportunities = con.execute(
            """
            SELECT rule_id, subject_id, evidence->>'deadline' AS deadline, evidence->>'title' AS title,
                   evidence->>'buyer_name' AS buyer, evidence->>'region' AS region,
                   evidence->>'tender_public_id' AS tender, CAST(evidence->'categories' AS VARCHAR[]) AS categories
            FROM flags WHERE resolved_at IS NULL AND kind = 'opportunity'
            QUALIFY row_number() OVER (PARTITION BY rule_id ORDER BY deadline NULLS LAST, value DESC, subject_id) = 1
            ORDER BY deadline IS NULL, deadline, rule_id""").fetchall()
        per_rule = con.execute(
            """SELECT kind, rule_id, count(*) FROM flags WHERE resolved_at IS NULL
               GROUP BY ALL ORDER BY kind DESC, count(*) DESC, rule_id""").fetchall()
    finally:
        con.close()
    lines = ["One finding per opportunity rule (open deadlines first):"]
    for rule_id, subject, deadline, title, buyer, region, tender, categories in opportunities:
        what = title or f"{subject}: {', '.join(categories or [])}"
        where = ", ".join(part for part in (buyer, region) if part and part != subject)
        link = f" https://prozorro.gov.ua/tender/{tender}" if tender else ""
        lines.append(terminal_safe(f"  - [{rule_id}] {what}" + (f" — {where}" if where else "")
                                   + (f" (deadline {deadline})" if deadline else "") + link))
    lines.append("Open flags per rule:")
    lines += [f"  {count:>6}  {kind:<11} {rule_id}" for kind, rule_id, count in per_rule]
    return "\n".join(lines)


@click.command()
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=DEFAULT_OUT, show_default=True,
              help="Where the report and the export go.")
@pass_app
def demo(app, out_dir: Path) -> None:
    """Run the whole pipeline offline on the shipped sample and print where the results are.

    Use --db to choose the database (make demo uses data/demo.duckdb).
    """
    started = time.monotonic()
    db = str(app.settings.db_path)
    common = ["--db", db, "--config", str(DEMO_CONFIG), "--log-format", app.log_format,
              *(["-q"] if verbosity() < 0 else ["-v"] if verbosity() > 0 else [])]
    world, ocds_files = build_world()
    report_dir, export_dir = out_dir / f"report-{SNAPSHOT_WEEK}", out_dir / "export-opportunities"
    click.echo(f"Sample world: {len(world)} ProZorro objects served on loopback, {len(ocds_files)} OCDS files "
               "(real fixtures, rule scenarios and a labelled synthetic world; see data/sample/SOURCES.md)",
               err=True)
    # the OCDS files are classified on load; the nightly run's flag step then covers everything
    with _environment(MONITOR_AFTER_STORE="classify"):
        _step("load the OCDS part of the sample", [*common, "load", *map(str, ocds_files)])
    with ReplayServer(world) as server, _environment(MONITOR_PROZORRO_API_URL=server.url):
        _step(f"nightly run against the replay server at {server.url}", [*common, "nightly"])
    _step(f"weekly report {SNAPSHOT_WEEK}", [*common, "report", "--week", SNAPSHOT_WEEK, "--out", str(report_dir)])
    _step("export the open opportunities", [*common, "export", "--format", "xlsx", "--kind", "opportunity",
                                            "--open-only", "--force", "--out", str(export_dir)])
    click.echo(_findings(app.settings.db_path))
    click.echo(f"\nDatabase: {db}\nReport:   {report_dir / 'report.html'} (open it in a browser)\n"
               f"Export:   {export_dir}/ (manifest.json lists the files)\n"
               f"Done in {time.monotonic() - started:.0f} s. Try: monitor --db {db} status")
