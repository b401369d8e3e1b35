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

from connectors.base import Connector, KnownLookup, Page
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


def page_batch(page: Page, source: str) -> pa.Table | None:
    """The page's records as a batch for ``store_batch`` (errors become quarantine rows)."""
    builder = BatchBuilder(source, "", max_rows=len(page.records) + 1, max_bytes=1 << 62)
    for record in page.records:
        builder.add(record.hint, record.text, error=record.error, origin=record.url)
    return builder.flush()


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

    producer = asyncio.create_task(produce(), name=f"pages-{connector.name}")
    try:
        while True:
            item = await pages.get()
            if item is finished:
                break
            if isinstance(item, Exception):
                raise item
            page: Page = item
            batch = page_batch(page, connector.source)
            fetched_at = datetime.now(timezone.utc)
            if batch is None:
                counts = await asyncio.to_thread(
                    store_batch, con, pa.table({}), fetched_at=fetched_at, cursor=(connector.name, page.cursor))
            else:
                counts = await asyncio.to_thread(
                    store_batch, con, batch, fetched_at=fetched_at, cursor=(connector.name, page.cursor))
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
            read = result.counts.new + result.counts.updated + result.counts.unchanged + result.counts.quarantined
            if stop.is_set() or (limit is not None and read >= limit):
                result.status = "incomplete"
                log.info("stopping after the committed page", source=connector.name,
                         reason="signal" if stop.is_set() else "limit", cursor=page.cursor)
                break
    except Exception as exc:
        result.status, result.error = "failed", str(exc)
        log.error("source failed", source=connector.name, error=str(exc), cursor=result.cursor)
    finally:
        producer.cancel()
        try:
            await producer
        except (asyncio.CancelledError, Exception):
            pass
    return result


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
