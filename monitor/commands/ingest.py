"""``monitor ingest [SOURCE ...]``: incremental pull from the configured APIs."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import datetime, timezone

import click
import orjson
import structlog
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from connectors.http import HttpClient
from monitor.cli import BadInput, pass_app
from monitor.config import ConfigError
from monitor.logs import show_progress
from monitor.ingest import SourceResult, ingest_all, known_lookup, latest_stored
from monitor.pipeline import after_store
from monitor.runs import finish_run, start_run
from monitor.sources import build_connectors, check_names, source_config
from monitor.store import connect
from monitor.store.records import BatchCounts

log = structlog.get_logger(__name__)


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise BadInput(f"--since {value!r}: expected a date like 2026-11-01 or 2026-11-01T00:00:00+02:00") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@click.command()
@click.argument("sources", nargs=-1, metavar="[SOURCE]...")
@click.option("--since", metavar="DATE", help="Where a source without a cursor starts (default: [prozorro] "
              "since_days back). Given explicitly, it also overrides stored cursors.")
@click.option("--full", is_flag=True, help="Read the whole feed from its beginning (ignores stored cursors).")
@click.option("--limit", type=click.IntRange(min=1), metavar="N",
              help="Stop each source after about N records (at a page boundary); the run is 'incomplete'.")
@pass_app
def ingest(app, sources: tuple[str, ...], since: str | None, full: bool, limit: int | None) -> None:
    """Pull new and changed records from the APIs (all enabled sources by default).

    Each page's records and the cursor after it commit together: kill it at any moment and the
    next run resumes where the last commit left off.
    """
    if since and full:
        raise BadInput("--since and --full exclude each other")
    try:
        config = source_config(app.settings)
        names = list(sources) or config.names()
        check_names(config, names)
    except ConfigError as exc:
        raise BadInput(str(exc)) from exc
    start_at = _parse_since(since)
    con = connect(app.settings.db_path, memory_limit=app.settings.memory_limit, threads=app.settings.threads)
    arguments = " ".join(["ingest", *names] + (["--since", since] if since else []) + (["--full"] if full else [])
                         + (["--limit", str(limit)] if limit else []))
    run_id = start_run(con, "ingest", arguments)
    log.info("ingest started", run=run_id, sources=names, since=since, full=full, limit=limit,
             db=str(app.settings.db_path), api=config.prozorro_api_url, rate_limit=config.http.rate_limit,
             concurrency=config.http.concurrency)
    started = time.monotonic()
    try:
        results, retries, requests = asyncio.run(
            _run(con, config, names, start_at, full, limit, resume=not (since or full)))
    except ConfigError as exc:
        finish_run(con, run_id, "failed", error=str(exc))
        con.close()
        raise BadInput(str(exc)) from exc
    except BaseException as exc:
        finish_run(con, run_id, "failed", error=str(exc) or type(exc).__name__)
        con.close()
        raise
    seconds = time.monotonic() - started
    totals = BatchCounts()
    for result in results:
        totals.add(result.counts)
    status = "failed" if any(r.status == "failed" for r in results) else (
        "incomplete" if any(r.status == "incomplete" for r in results) or len(results) < len(names) else "complete")
    summary = {**totals.as_dict(), "retries": retries, "requests": requests, "seconds": round(seconds, 2),
               "sources": {r.name: {"status": r.status, "pages": r.pages, **r.counts.as_dict()} for r in results}}
    cursors = orjson.dumps({r.name: r.cursor for r in results}).decode()
    errors = "; ".join(f"{r.name}: {r.error}" for r in results if r.error) or None
    finish_run(con, run_id, status, summary, last_cursor=cursors, error=errors)
    after_store(con, app.settings)
    log.info("ingest finished", status=status, **{k: v for k, v in summary.items() if k != "sources"})
    click.echo(
        f"ingest {status}: {totals.new} new, {totals.updated} updated, {totals.unchanged} unchanged, "
        f"{totals.quarantined} quarantined, {retries} retries, {requests} requests in {seconds:.1f} s"
    )
    if status == "failed":
        raise click.exceptions.Exit(1)


async def _run(con, config, names, start_at, full, limit, *, resume: bool) -> tuple[list[SourceResult], int, int]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, _request_stop, stop, signum)
    try:
        async with HttpClient(config.http) as client:
            connectors = build_connectors(config, client, names, since=start_at, full=full, known=known_lookup(con),
                                          latest=lambda kind: latest_stored(con, "prozorro", kind))
            with _progress() as progress:
                tasks = {name: progress.add_task(name, total=None, records=0, pages=0, retries=0, rate=0.0)
                         for name in names}
                began = time.monotonic()

                def on_page(result: SourceResult) -> None:
                    done = result.counts
                    records = done.new + done.updated + done.unchanged + done.quarantined
                    progress.update(tasks[result.name], pages=result.pages, retries=client.retries, records=records,
                                    rate=records / max(time.monotonic() - began, 1e-3))

                results = await ingest_all(con, connectors, stop=stop, limit=limit, resume=resume, on_page=on_page)
            return results, client.retries, client.requests
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def _request_stop(stop: asyncio.Event, signum: int) -> None:
    log.warning("stop requested; finishing the page in flight", signal=signal.Signals(signum).name)
    stop.set()


def _progress() -> Progress:
    """Pages, records, retries and rate per source; only on a terminal."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<20}"),
        TextColumn("{task.fields[pages]:>6} pages {task.fields[records]:>9,} records "
                   "{task.fields[retries]:>5} retries"),
        TextColumn("{task.fields[rate]:>7.0f} records/s"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not show_progress(),
        transient=False,
    )
