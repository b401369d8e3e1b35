"""Run connectors into the store: one transaction per page (records + the cursor after them).

A producer task pulls pages from the connector (HTTP, concurrent object fetches) while the
previous page is being stored in a worker thread, so network and database work overlap. Stopping
(SIGINT/SIGTERM, or ``--limit``) takes effect after the page in flight is committed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from datetime import datetime, timezone

import duckdb
import pyarrow as pa
import structlog

from connectors.base import Connector, FetchedRecord, KnownLookup, Page, RefetchingConnector
from monitor.store import fetch_retries
from monitor.store.fetch_retries import Failure, Pending
from monitor.store.db import transaction
from monitor.store.records import BatchBuilder, BatchCounts, store_batch

log = structlog.get_logger(__name__)


@dataclasses.dataclass
class SourceResult:
    """What one source's ingest did."""

    name: str
    counts: BatchCounts = dataclasses.field(default_factory=BatchCounts)
    pages: int = 0
    listed: int = 0
    known: int = 0
    cursor: str | None = None
    status: str = "complete"  # complete | incomplete | failed
    error: str | None = None
    restarts: int = 0  # the server rejected the cursor (404) and paging restarted from the configured start
    rejected: str | None = None  # that cursor
    restarted_from: str | None = None  # where paging restarted ("" or None: the beginning of the feed)
    deferred: int = 0  # objects the server failed to give, put on the retry queue in this run
    recovered: int = 0  # objects of the retry queue fetched in this run (stored, or quarantined)
    queued: int = 0  # objects left on the retry queue after this run


def known_lookup(con: duckdb.DuckDBPyConnection) -> KnownLookup:
    """Which listed ProZorro objects are stored with that dateModified or newer (own cursor: thread-safe)."""
    reader = con.cursor()

    def known(kind: str, listed: list[tuple[str, str]]) -> set[str]:
        if not listed:
            return set()
        table = pa.table({"id": [i for i, _ in listed], "listed_date": [d for _, d in listed]})
        reader.register("listed_ids", table)
        try:
            rows = reader.execute(
                "SELECT r.id FROM raw_records r JOIN listed_ids l ON r.id = l.id "
                "WHERE r.source = 'prozorro' AND r.kind = ? "
                "AND r.date_modified >= TRY_CAST(l.listed_date AS TIMESTAMPTZ)",
                [kind],
            ).fetchall()
        finally:
            reader.unregister("listed_ids")
        return {row[0] for row in rows}

    return known


def read_cursor(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    # fetchall, not fetchone: DuckDB keeps a fetchone() result open and then refuses register()
    rows = con.execute("SELECT cursor FROM cursors WHERE source = ?", [name]).fetchall()
    return rows[0][0] if rows else None


def page_batch(records: list[FetchedRecord], source: str) -> pa.Table:
    """Records as a batch for ``store_batch`` (errors become quarantine rows; those to fetch again are
    left out: the retry queue holds them)."""
    builder = BatchBuilder(source, "", max_rows=len(records) + 1, max_bytes=1 << 62)
    for record in records:
        if not record.retry:
            builder.add(record.hint, record.text, error=record.error, origin=record.url)
    return builder.flush() or pa.table({})


class PageFailed(Exception):
    """No object of a page came, and the server failed to give some of them for the first time."""


def _failures(records: list[FetchedRecord]) -> list[Failure]:
    return [Failure(r.object_id or r.url, r.url, r.error or "") for r in records if r.retry]


def _settled(records: list[FetchedRecord], queue: dict[str, Pending]) -> list[str]:
    """The queued objects among those fetched (stored, or quarantined as bad input)."""
    return [r.object_id for r in records if not r.retry and r.object_id in queue]


def _queue_writer(connector: RefetchingConnector, failures: list[Failure], settled: list[str], now: datetime):
    """What a stored batch also writes, in its transaction: settled objects leave the queue, failures are deferred."""

    def write(con: duckdb.DuckDBPyConnection) -> None:
        fetch_retries.clear(con, connector.name, settled)
        fetch_retries.note_failures(con, connector.name, connector.source, connector.kind, failures,
                                    deferred=True, now=now)

    return write if failures or settled else None


def _track(queue: dict[str, Pending], failures: list[Failure], settled: list[str], *, deferred: bool) -> None:
    """Keep the in-memory copy of the queue in step with what was written."""
    for object_id in settled:
        queue.pop(object_id, None)
    for failure in failures:
        known = queue.setdefault(failure.id, Pending(failure.id, failure.url, 0, deferred))
        known.failures += 1
        known.deferred = known.deferred or deferred


async def _retry_queued(con: duckdb.DuckDBPyConnection, connector: RefetchingConnector, queue: dict[str, Pending],
                        result: SourceResult) -> None:
    """Fetch the feed's deferred objects again, before its pages; store what comes."""
    ids = [object_id for object_id, row in queue.items() if row.deferred]
    if not ids:
        return
    log.info("fetching deferred objects again", source=connector.name, objects=len(ids))
    records = await connector.refetch(ids)
    failures, settled = _failures(records), _settled(records, queue)
    now = datetime.now(timezone.utc)
    counts = await asyncio.to_thread(store_batch, con, page_batch(records, connector.source), fetched_at=now,
                                     also=_queue_writer(connector, failures, settled, now))
    result.counts.add(counts)
    result.recovered += len(settled)
    _track(queue, failures, settled, deferred=True)
    if failures:
        log.warning("deferred objects still failing", source=connector.name, objects=len(failures),
                    first=failures[0].url, error=failures[0].error)


async def ingest_source(
    con: duckdb.DuckDBPyConnection,
    connector: Connector,
    *,
    cursor: str | None,
    stop: asyncio.Event,
    limit: int | None = None,
    on_page: Callable[[SourceResult], None] | None = None,
) -> SourceResult:
    """Ingest one source from ``cursor`` until the feed ends, ``stop`` is set or ``limit`` records are read."""
    result = SourceResult(connector.name, cursor=cursor)
    pages: asyncio.Queue = asyncio.Queue(maxsize=1)
    finished = object()

    async def produce() -> None:
        try:
            async for page in connector.pages(cursor):
                await pages.put(page)
            await pages.put(finished)
        except Exception as exc:  # handed to the consumer, which records the run as failed
            await pages.put(exc)

    refetching = isinstance(connector, RefetchingConnector)
    queue = fetch_retries.pending(con, connector.name) if refetching else {}
    producer = None
    try:
        if refetching:
            await _retry_queued(con, connector, queue, result)
        producer = asyncio.create_task(produce(), name=f"pages-{connector.name}")
        while True:
            item = await pages.get()
            if item is finished:
                break
            if isinstance(item, Exception):
                raise item
            page: Page = item
            fetched_at = datetime.now(timezone.utc)
            failures, settled = _failures(page.records), _settled(page.records, queue)
            if failures and len(failures) == len(page.records) and any(f.id not in queue for f in failures):
                # nothing of the page came: maybe an outage. Fail the page (its cursor is not committed),
                # but remember the objects: if they fail again next run, they are deferred and the feed goes on
                await asyncio.to_thread(_note_outage, con, connector, failures, fetched_at)
                _track(queue, failures, [], deferred=False)
                first = failures[0]
                raise PageFailed(f"the server failed to give {len(failures)} object(s) of the page, none came; "
                                 f"first: {first.error} ({first.url})")
            counts = await asyncio.to_thread(
                store_batch, con, page_batch(page.records, connector.source), fetched_at=fetched_at,
                cursor=(connector.name, page.cursor), also=_queue_writer(connector, failures, settled, fetched_at))
            _track(queue, failures, settled, deferred=True)
            result.deferred += len(failures)
            result.recovered += len(settled)
            for failure in failures:
                log.warning("object deferred to the retry queue", source=connector.name, url=failure.url,
                            error=failure.error)
            result.counts.add(counts)
            result.pages += 1
            result.listed += page.listed
            result.known += page.known
            if page.restarted:
                result.restarts += 1
                result.rejected, result.restarted_from = page.rejected, page.cursor or ""
            result.cursor = page.cursor
            if on_page:
                on_page(result)
            if page.end:
                break
            read = (result.counts.new + result.counts.updated + result.counts.unchanged + result.counts.quarantined
                    + result.deferred)
            if stop.is_set() or (limit is not None and read >= limit):
                result.status = "incomplete"
                log.info("stopping after the committed page", source=connector.name,
                         reason="signal" if stop.is_set() else "limit", cursor=page.cursor)
                break
    except Exception as exc:
        result.status, result.error = "failed", str(exc)
        log.error("source failed", source=connector.name, error=str(exc), cursor=result.cursor)
    finally:
        if producer is not None:
            producer.cancel()
            try:
                await producer
            except (asyncio.CancelledError, Exception):
                pass
    result.queued = len(queue)
    return result


def _note_outage(con: duckdb.DuckDBPyConnection, connector: RefetchingConnector, failures: list[Failure],
                 now: datetime) -> None:
    with transaction(con):
        fetch_retries.note_failures(con, connector.name, connector.source, connector.kind, failures,
                                    deferred=False, now=now)


async def ingest_all(
    con: duckdb.DuckDBPyConnection,
    connectors: list[Connector],
    *,
    stop: asyncio.Event,
    limit: int | None,
    resume: bool = True,
    on_page: Callable[[SourceResult], None] | None = None,
) -> list[SourceResult]:
    """Ingest the sources one after another (they share the client's rate limit).

    ``resume=False`` ignores stored cursors (an explicit --since or --full).
    """
    results = []
    for connector in connectors:
        started = time.monotonic()
        cursor = read_cursor(con, connector.name) if resume else None
        log.info("source started", source=connector.name, cursor=cursor)
        result = await ingest_source(con, connector, cursor=cursor, stop=stop, limit=limit, on_page=on_page)
        log.info("source finished", source=connector.name, status=result.status, pages=result.pages,
                 restarts=result.restarts, seconds=round(time.monotonic() - started, 2), **result.counts.as_dict())
        results.append(result)
        if stop.is_set():
            break
    return results
