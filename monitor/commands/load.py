"""``monitor load PATH ...``: bulk-load ProZorro and OCDS files into the database."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import click
import structlog
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from monitor.cli import BadInput, pass_app
from monitor.config import Settings
from monitor.loading.files import (
    FileResult,
    InputError,
    ReadOptions,
    find_files,
    read_file,
)
from monitor.lock import hold_lock
from monitor.logs import show_progress
from monitor.pipeline import AfterStore, after_store
from monitor.runs import finish_run, start_run
from monitor.store import connect
from monitor.store.records import BatchCounts, store_batch

log = structlog.get_logger(__name__)


@click.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option(
    "--format",
    "data_format",
    type=click.Choice(["auto", "prozorro", "ocds"]),
    default="auto",
    show_default=True,
    help="Data format; auto recognises it per file.",
)
@click.option("--source", "ocds_source", default="ocds", show_default=True,
              help="Source name stored with OCDS records (e.g. the publisher).")
@pass_app
def load(app, paths: tuple[str, ...], data_format: str, ocds_source: str) -> None:
    """Load files and folders of ProZorro JSON and OCDS packages (.json, .jsonl, .gz).

    ProZorro: bare tenders, contracts and plans, API envelopes {"data": ..., "config": ...}, or JSON
    Lines of them. OCDS: release packages, record packages, JSON Lines of compiled releases.
    Bad records are quarantined with the reason; the rest load. Loading the same input twice
    changes nothing.
    """
    try:
        files = find_files(list(paths))
    except InputError as exc:
        raise BadInput(str(exc)) from exc
    settings = app.settings
    options = ReadOptions(
        forced_format=data_format,
        ocds_source=ocds_source,
        max_record_bytes=int(settings.max_record_mb * (1 << 20)),
        batch_rows=settings.batch_rows,
    )
    arguments = shlex.join(["load", *paths, "--format", data_format])
    with hold_lock(settings.db_path, arguments):  # never beside a nightly run or an ingest (exit 3)
        try:
            summary, after = _load_files(settings, files, options, arguments)
        except InputError as exc:  # a whole file refused mid-load (the run is recorded as failed)
            raise BadInput(str(exc)) from exc
    log.info("load finished", **summary)
    click.echo(
        f"loaded {len(files)} file(s): {summary['new']} new, {summary['updated']} updated, "
        f"{summary['unchanged']} unchanged, {summary['older']} older than stored, {summary['skipped']} skipped, "
        f"{summary['quarantined']} quarantined in {summary['seconds']:.1f} s"
    )
    if after.failed:  # classification or a flag rule failed after the data was committed
        click.echo(after.note())
        raise click.exceptions.Exit(after.exit_code)


def _load_files(settings: Settings, files: list[Path], options: ReadOptions,
                arguments: str) -> tuple[dict, AfterStore]:
    """Store the files' records in one recorded run, then classify and flag; return the summary and what
    failed after the store."""
    con = connect(settings.db_path, memory_limit=settings.memory_limit, threads=settings.threads)
    run_id = start_run(con, "load", arguments)
    log.info("load started", db=str(settings.db_path), files=len(files), format=options.forced_format, run=run_id)
    started = time.monotonic()
    totals = BatchCounts()
    total_bytes = sum(f.stat().st_size for f in files)
    try:
        with _progress(total_bytes) as progress:
            task = progress.add_task("loading", total=total_bytes)
            for path in files:
                result = FileResult(str(path))
                before = totals.as_dict()
                for batch in read_file(path, options, result):
                    totals.add(store_batch(con, batch))
                    progress.update(task, description=f"{path.name} {totals.new + totals.updated:,} stored")
                progress.advance(task, path.stat().st_size)
                delta = {k: v - before[k] for k, v in totals.as_dict().items()}
                log.info("file loaded", path=str(path), shape=result.shape, records=result.records, **delta)
    except Exception as exc:
        finish_run(con, run_id, "failed", totals.as_dict(), error=str(exc))
        con.close()
        raise
    seconds = time.monotonic() - started
    summary = {**totals.as_dict(), "files": len(files), "seconds": round(seconds, 2)}
    finish_run(con, run_id, "complete", summary)
    return summary, after_store(con, settings)


def _progress(total_bytes: int) -> Progress:
    """A progress bar on a terminal; silent under cron and in tests."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not show_progress() or total_bytes == 0,
        transient=True,
    )
