"""``monitor ingest [SOURCE ...]``: incremental pull from the configured APIs."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import threading
import time
from datetime import datetime
from typing import Any

import click
import orjson
import structlog
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from connectors.http import HttpClient
from connectors.ocds_api import OcdsPackageApi
from connectors.prozorro import ProzorroFeed
from monitor.cli import BadInput, pass_app
from monitor.config import ConfigError, parse_datetime
from monitor.lock import hold_lock
from monitor.logs import show_progress
from monitor.ingest import SourceResult, ingest_all, known_lookup
from monitor.pipeline import after_store
from monitor.runs import close_abandoned_runs, cursor_start, finish_run, record_starts, start_run
from monitor.sources import build_connectors, check_names, source_config
from monitor.store import connect
from monitor.store.records import BatchCounts

log = structlog.get_logger(__name__)


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_datetime(value)
    except ValueError as exc:
        raise BadInput(f"--since: {exc}") from exc


@dataclasses.dataclass
class IngestOutcome:
    """What an ingest of several sources did: per-source results and the summary stored in ``runs``."""

    status: str  # complete | incomplete | failed
    results: list[SourceResult]
    totals: BatchCounts
    retries: int
    requests: int
    seconds: float
    summary: dict[str, Any]
    cursors: str
    errors: str | None
    stopped: bool  # SIGINT/SIGTERM (or ``stop``) ended it after the page in flight


def run_ingest(con, config, names: list[str], *, start_at: datetime | None = None, full: bool = False,
               limit: int | None = None, stop: threading.Event | None = None,
               run_id: int | None = None) -> IngestOutcome:
    """Ingest ``names`` into ``con`` (used by ``monitor ingest`` and ``monitor nightly``).

    The caller records the run; given its ``run_id``, where each ProZorro feed starts is noted on the
    run's row before the first page commits (where a rejected cursor of this chain restarts).
    A failing source does not stop the others. Without ``stop``, SIGINT/SIGTERM are caught while this
    runs (main thread only); with it, the caller owns the signals and sets ``stop`` to end the run
    after the page in flight.
    """
    started = time.monotonic()
    results, retries, requests, by_source, stopped, starts = asyncio.run(
        _run(con, config, names, start_at, full, limit, resume=not (start_at or full), stop_event=stop,
             run_id=run_id))
    seconds = time.monotonic() - started
    totals = BatchCounts()
    for result in results:
        totals.add(result.counts)
    status = "failed" if any(r.status == "failed" for r in results) else (
        "incomplete" if any(r.status == "incomplete" for r in results) or len(results) < len(names) else "complete")
    summary = {**totals.as_dict(), "retries": retries, "requests": requests,
               "restarts": sum(r.restarts for r in results), "deferred": sum(r.deferred for r in results),
               "recovered": sum(r.recovered for r in results), "queued": sum(r.queued for r in results),
               "seconds": round(seconds, 2),
               "sources": {r.name: _source_summary(r, by_source.get(r.name, 0), starts.get(r.name))
                           for r in results}}
    cursors = orjson.dumps({r.name: r.cursor for r in results}).decode()
    errors = "; ".join(f"{r.name}: {r.error}" for r in results if r.error) or None
    return IngestOutcome(status, results, totals, retries, requests, seconds, summary, cursors, errors, stopped)


def _source_summary(result: SourceResult, retries: int, start: str | None) -> dict[str, Any]:
    """One source's entry in the run's counts: status, pages, counts, retries, its start, any restart."""
    summary = {"status": result.status, "pages": result.pages, **result.counts.as_dict(), "retries": retries,
               "deferred": result.deferred, "recovered": result.recovered, "queued": result.queued}
    if start is not None:
        summary["start"] = start
    if result.restarts:
        summary["restart"] = {"rejected": result.rejected, "from": result.restarted_from}
    return summary


def retry_queue_note(summary: dict[str, Any]) -> str:
    """``; 2 deferred to the retry queue, 1 recovered from it, 3 waiting`` when the queue was used, or ``""``."""
    if not (summary["deferred"] or summary["recovered"] or summary["queued"]):
        return ""
    return (f"; {summary['deferred']} deferred to the retry queue, {summary['recovered']} recovered from it, "
            f"{summary['queued']} waiting")


def restart_note(results: list[SourceResult]) -> str:
    """``; cursor rejected (404), restarted from the configured start: prozorro-tenders`` or ``""``."""
    restarted = [r.name for r in results if r.restarts]
    return f"; cursor rejected (404), restarted from the configured start: {', '.join(restarted)}" if restarted else ""


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
    next run resumes where the last commit left off (and closes the killed run's row as
    'incomplete'). A cursor the server rejects (404) restarts the feed from the configured start of
    the run that began it (its --since or default start, or the beginning after --full); stored
    objects are not fetched again. Holds the database's lock (exit code 3 when another run, e.g. the
    nightly one, holds it).
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
    arguments = " ".join(["ingest", *names] + (["--since", since] if since else []) + (["--full"] if full else [])
                         + (["--limit", str(limit)] if limit else []))
    with hold_lock(app.settings.db_path, arguments):
        con = connect(app.settings.db_path, memory_limit=app.settings.memory_limit, threads=app.settings.threads)
        close_abandoned_runs(con)  # holding the lock: a 'running' ingest or nightly row is a dead process's
        run_id = start_run(con, "ingest", arguments)
        log.info("ingest started", run=run_id, sources=names, since=since, full=full, limit=limit,
                 db=str(app.settings.db_path), api=config.prozorro_api_url, rate_limit=config.http.rate_limit,
                 concurrency=config.http.concurrency)
        try:
            outcome = run_ingest(con, config, names, start_at=start_at, full=full, limit=limit, run_id=run_id)
        except ConfigError as exc:
            finish_run(con, run_id, "failed", error=str(exc))
            con.close()
            raise BadInput(str(exc)) from exc
        except BaseException as exc:
            finish_run(con, run_id, "failed", error=str(exc) or type(exc).__name__)
            con.close()
            raise
        status, summary, totals = outcome.status, outcome.summary, outcome.totals
        finish_run(con, run_id, status, summary, last_cursor=outcome.cursors, error=outcome.errors)
        after = after_store(con, app.settings)
    log.info("ingest finished", status=status, **{k: v for k, v in summary.items() if k != "sources"})
    click.echo(
        f"ingest {status}: {totals.new} new, {totals.updated} updated, {totals.unchanged} unchanged, "
        f"{totals.quarantined} quarantined, {outcome.retries} retries, {outcome.requests} requests "
        f"in {outcome.seconds:.1f} s{retry_queue_note(summary)}{restart_note(outcome.results)}"
    )
    if after.failed:  # classification or a flag rule failed after the data was committed
        click.echo(after.note())
    if status == "failed" or after.failed:
        raise click.exceptions.Exit(max(1 if status == "failed" else 0, after.exit_code))


async def _run(con, config, names, start_at, full, limit, *, resume: bool, stop_event: threading.Event | None,
               run_id: int | None) -> tuple[list[SourceResult], int, int, dict[str, int], bool, dict[str, str]]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM) if stop_event is None and \
        threading.current_thread() is threading.main_thread() else ()
    for signum in signals:
        loop.add_signal_handler(signum, _request_stop, stop, signum)
    watcher = asyncio.create_task(_watch(stop_event, stop)) if stop_event is not None else None
    try:
        async with HttpClient(config.http) as client:
            connectors = build_connectors(config, client, names, since=start_at, full=full, known=known_lookup(con),
                                          cursor_start=lambda name: cursor_start(con, name))
            starts = {c.name: c.start for c in connectors if isinstance(c, (ProzorroFeed, OcdsPackageApi))}
            if run_id is not None and starts:
                record_starts(con, run_id, starts)
            with _progress() as progress:
                tasks = {name: progress.add_task(name, total=None, records=0, pages=0, retries=0, rate=0.0)
                         for name in names}
                began = time.monotonic()

                def on_page(result: SourceResult) -> None:
                    done = result.counts
                    records = done.new + done.updated + done.unchanged + done.quarantined
                    progress.update(tasks[result.name], pages=result.pages, retries=client.retries, records=records,
                                    rate=records / max(time.monotonic() - began, 1e-3))

                # one source at a time (as ingest_all does), to count the retries of each
                results: list[SourceResult] = []
                by_source: dict[str, int] = {}
                for connector in connectors:
                    before = client.retries
                    results += await ingest_all(con, [connector], stop=stop, limit=limit, resume=resume,
                                                on_page=on_page)
                    by_source[connector.name] = client.retries - before
                    if stop.is_set():
                        break
            return results, client.retries, client.requests, by_source, stop.is_set(), starts
    finally:
        if watcher is not None:
            watcher.cancel()
        for signum in signals:
            loop.remove_signal_handler(signum)


async def _watch(stop_event: threading.Event, stop: asyncio.Event) -> None:
    """Hand a stop request from another thread (a signal handler, the scheduler) to the ingest."""
    while not stop_event.is_set():
        await asyncio.sleep(0.1)
    stop.set()


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
